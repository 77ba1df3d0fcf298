// Package screening is the domain of Sunpath's psychological screening: an
// instrument Definition (compiled from its versioned data file), the Answers
// a person gave, and the Result that one scoring engine derives from them
// exactly as each instrument's manual says.
//
// The package imports only the standard library (and the shared problem
// package for validation errors). Scoring is pure and deterministic: the same
// definition (identified by its content hash), engine version, answers and
// options always give the same Result, so a stored result can be re-derived.
//
// Every number is computed in integer arithmetic. Totals are integers; a
// prorated total is rounded half up. Means are reported in hundredths (rounded
// half up), and every rule (severity band, outcome, flag) compares the number
// that is reported, never a hidden unrounded one, so what a counselor reads is
// what the rules saw.
package screening
