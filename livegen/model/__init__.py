"""The model side: the token vocabulary, model files, the warm runtime and the output heads
(docs/ARCHITECTURE.md, "Modules")."""
