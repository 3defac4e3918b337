"""The check stage: on-save diagnostics, the sandbox that runs user code, its worker, and the contract engines."""
