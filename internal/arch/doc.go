// Package arch holds only tests: they check by machine, over go list, the
// import arrows of DESIGN.md and STYLE.md section 1 (v2core imports
// nothing of ours, padding and schedule only the standard library, only
// cmd and eval import eval's packages, tests elsewhere only its leaves
// eval/wiretap, eval/fet and eval/measure), and that "testing" is imported
// only by _test.go files and test-support packages (named *test, as
// nodetest and tortest, or testutil) that no other non-test code imports.
package arch
