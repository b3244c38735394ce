// Placeholder until native/ lands: the native engine build step runs here during `npm ci`.
