package workload_test

import (
	"context"
	"fmt"
	"net"

	"github.com/bip324pt/bip324-pt/eval/workload"
)

// Drive the two ends of a connection (here a net.Pipe standing in for a
// shaped tunnel) with the bulk workload.
func Example_usage() {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	w, err := workload.New("bulk")
	if err != nil {
		panic(err)
	}
	res, err := w.Run(context.Background(), client, server, workload.Params{Seed: 1, BulkBytes: 100_000})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Up, res.Down, len(res.Messages), res.Completion > 0)
	// Output: 100000 100000 4 true
}
