// Public API of @peft-ts/nf4-quant. Nothing is exported until the package's capability lands.
export {};
