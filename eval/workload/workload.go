package workload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

// DefaultBulkBytes is what the bulk workload moves each way when
// Params.BulkBytes is 0.
const DefaultBulkBytes = 1 << 20

// Params are the parameters of one run. The zero value runs each workload
// for no time at all: bulk still moves DefaultBulkBytes each way, and web
// still loads one page (trace 0, since Site is 0).
type Params struct {
	// Seed is the source of all randomness: message sizes, gaps, the
	// pages web picks and every payload byte.
	Seed uint64
	// Duration is how long idle, interactive, bitcoin and web run (see
	// each workload's doc for what happens at the end). Bulk ignores it.
	// Negative is an error.
	Duration time.Duration
	// BulkBytes is what bulk moves each way; 0 means DefaultBulkBytes.
	// Negative is an error.
	BulkBytes int64
	// Traces are web's page loads (schedule.ParseTrace's output, such as
	// the files in testdata/traces). Web needs at least one.
	Traces [][]schedule.TraceEvent
	// Site, for web: if 0 <= Site < len(Traces), every page replays
	// Traces[Site], so a run is labelled by site; a negative Site picks
	// each page from Seed; Site >= len(Traces) is an error.
	Site int
}

// Message is one application message: its direction seen from the client
// (DirSent: client to server), its size in bytes including the
// HeaderSize-byte header, when the sending end started writing it, and
// when its last byte was read at the far end, both counted from
// Result.Start. Recv - Sent is its one-way delay.
type Message struct {
	Dir        schedule.Direction
	Size       int
	Sent, Recv time.Duration
}

// Result is what one run measured, as the application at each end saw it.
type Result struct {
	// Start is when the workload began; all durations count from it.
	Start time.Time
	// Up and Down are the application bytes delivered (read and checked
	// at the far end) client to server and server to client.
	Up, Down int64
	// Messages are the messages delivered in both directions, ordered by
	// Sent (ties: client to server first, then in sending order). Each
	// has Recv >= Sent. Their sizes add up to Up and Down.
	Messages []Message
	// Completion is the time from Start until the last byte of the
	// workload's finite work arrived: for bulk, both directions whole;
	// for web, the first page complete (every message of it delivered).
	// It is 0 for idle, interactive and bitcoin, whose work has no end.
	Completion time.Duration
	// App is the application-level trace at the client end: each write
	// on the client's conn (DirSent, one per message) and each read that
	// returned bytes (DirReceived, its byte count), in time order. The
	// sizes add up to Up and Down; the end-of-stream marker of a conn
	// without CloseWrite is left out.
	App []schedule.TraceEvent
	// Site is, for web, the index in Params.Traces of the first page
	// replayed; -1 for every other workload.
	Site int
}

// A Workload drives both application ends of one run.
type Workload interface {
	// Name is the workload's name, as New takes it.
	Name() string
	// Run drives both ends until the work is done or Params.Duration has
	// passed (each workload's doc says which), closes its write sides
	// (CloseWrite when the conn has one, else an in-band end marker), and
	// waits for the far ends' end of stream. It checks every byte against
	// the payload the seed prescribes and returns an error wrapping
	// ErrIntegrity on a mismatch.
	//
	// client and server are the two application ends of one tunnel: what
	// is written to one is read, in order, from the other. Run neither
	// closes them nor, on success, touches their deadlines; the caller
	// owns them. When ctx ends first, Run sets both conns' deadlines in
	// the past to stop its reads and writes, and returns ctx.Err() with
	// what it had measured so far; the conns are then unusable. Run
	// leaves no goroutine behind. A Workload is stateless and safe for
	// concurrent use with different conns.
	Run(ctx context.Context, client, server net.Conn, p Params) (Result, error)
}

// Errors that Run wraps.
var (
	// ErrIntegrity: a message arrived other than as sent (a wrong byte, a
	// sequence number out of order, a size or kind that the workload
	// does not send), or a stream ended inside a message.
	ErrIntegrity = errors.New("workload: integrity check failed")
	// ErrParams: Params has a value the workload cannot run with.
	ErrParams = errors.New("workload: bad parameters")
)

// names lists the workloads in the order Names returns them.
var names = []string{"bulk", "web", "interactive", "idle", "bitcoin"}

// Names returns the names New accepts: bulk, web, interactive, idle,
// bitcoin.
func Names() []string { return append([]string(nil), names...) }

// New returns the workload called name, or an error listing Names.
func New(name string) (Workload, error) {
	switch name {
	case "bulk":
		return bulk{}, nil
	case "web":
		return web{}, nil
	case "interactive":
		return interactive{}, nil
	case "idle":
		return idle{}, nil
	case "bitcoin":
		return bitcoin{}, nil
	}
	return nil, fmt.Errorf("workload: unknown workload %q (known: %s)", name, strings.Join(names, ", "))
}
