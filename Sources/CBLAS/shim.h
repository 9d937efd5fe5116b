// OpenBLAS's C interface plus its thread-control extensions.
#include <cblas.h>
