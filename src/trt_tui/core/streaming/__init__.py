"""Streaming contracts and streaming parity.

- `contract`: the versioned JSON contract (schema, loading, validation with every problem collected);
- `contract_init`: a first contract guessed from a model (state pairs from names and shapes);
- `schedule`, `feeds`, `masks`, `invariants`: the pieces one chunk needs;
- `trend`: least-squares error slope and its significance; `plot`, `png`: error against chunk;
- `engine`: the chunk loop (functional or closed loop), results streamed chunk by chunk.
"""
