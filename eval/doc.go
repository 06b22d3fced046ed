// Package eval measures shaping profiles: workloads that move data through
// a shaped tunnel, a tap that records every write on the wire
// (internal/wiretap), traces in the Maybenot time_ns,direction,size form,
// and metrics. It may import every package of the project; only the
// command imports it.
package eval
