// HeadroomEngine: the LLaMA-family model Headroom measures — configuration, weights (synthetic or
// from GGUF), the inference session (prefill, decode, batched decode) and the fine-tuning trainer.
// It imports only the kernels; it knows nothing of prices, plans or the store.
import HeadroomKernels
