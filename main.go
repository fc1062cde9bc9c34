// Command ib is an incremental backup server and its client in one binary.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"ib/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// IB_CPUPROFILE=FILE writes a CPU profile of the whole run (for
	// profiling; see bench/).
	if p := os.Getenv("IB_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "ib: IB_CPUPROFILE: %v\n", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	code := cmd.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	pprof.StopCPUProfile()
	// IB_MEMPROFILE=FILE writes what the run allocated (pprof's allocs
	// profile: -sample_index=alloc_space shows where the bytes went).
	if p := os.Getenv("IB_MEMPROFILE"); p != "" {
		if err := writeAllocs(p); err != nil {
			fmt.Fprintf(os.Stderr, "ib: IB_MEMPROFILE: %v\n", err)
		}
	}
	os.Exit(code)
}

func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
