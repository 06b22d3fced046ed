// Package profiles is the declarative side of shaping: a TOML profile
// file names a schedule, size distributions, handshake shaping and limits,
// and compiles into a shaper.Shape. Parse and Load validate a file fully
// and report problems as *Error with the file, line and field. The
// built-in profiles (none, bitcoin, cbr, video, fet, jitter) are embedded
// in the binary; docs/profiles.md describes every field.
//
// # Schedule kinds
//
// Each [schedule] kind has its own file, kind_NAME.go, holding its entry
// in a registry of kinds: a struct of the kind's keys (each field tagged
// with its key and named after the field of the schedule's Params it
// sets), and a kind value with Compile, which checks what the schedule's
// constructor does not and returns the factory of connections'
// schedules, and Params, which reads a schedule's effective parameters.
// An init function registers it with registerKind. Parse decodes the
// [schedule] table into the struct of its kind, so a key of another
// kind is an *Error naming the file, line and key, and the kinds that
// take it. The defaults are the schedule's own: a key left out is a zero
// value the constructor fills in, and [CompiledSchedule.Params] gives the
// result. So a new kind is its schedule in package schedule, a
// kind_NAME.go here, and a row in docs/profiles.md (which a test checks).
package profiles
