package postgres

// SealReadSQL is the sealer's read of its queue, for the plan test.
const SealReadSQL = sealReadSQL
