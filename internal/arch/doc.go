// Package arch holds only a test: it checks the import arrows of
// DESIGN.md and STYLE.md section 1 by machine.
package arch
