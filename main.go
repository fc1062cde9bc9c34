// Command ib is an incremental backup server and its client in one binary.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"ib/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
