// Package bench holds ovsnet's benchmarks: programs that measure ovsnet
// side by side with the alternatives in one run and write their figures to
// bench/results. They are not part of `make test`; run `make bench`.
package bench
