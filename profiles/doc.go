// Package profiles is the declarative side of shaping: a TOML profile
// file names a schedule, size distributions, handshake shaping and limits,
// and compiles into a shaper.Config. Parse and Load validate a file fully
// and report problems as *Error with the file, line and field. The
// built-in profiles (none, bitcoin, cbr, video, fet, jitter) are embedded
// in the binary; docs/profiles.md describes every field.
package profiles
