// HeadroomScheduling: the serving scheduler's policy as pure logic — which requests run in the next
// model step and with how many tokens each (one token budget shared by prefill chunks and decodes, a cap
// on running sequences, chunked prefill, FCFS admission by free KV blocks, preemption by recompute) —
// over request and KV-block bookkeeping only.
//
// It imports nothing, not even Foundation, so that the engine behind `headroom serve` and HeadroomCore's
// discrete-event simulator both run the same `SchedulingPolicy`: the simulated scheduler *is* the real one.
//
// Folders are the domain's nouns: `Requests/` (what arrives and what leaves), `Blocks/` (the KV cache as
// blocks of positions from one pool), `Scheduler/` (the configuration, the step plan and the policy).
