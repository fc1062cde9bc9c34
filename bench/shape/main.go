// Command shape runs a shaping TCP proxy (internal/shaper) for the
// network benchmarks: `go run ./bench/shape -target 127.0.0.1:8080 -rtt
// 80ms -rate 100Mbit` prints the address to connect to and runs until
// killed.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"ib/internal/shaper"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	target := flag.String("target", "", "address to forward to (HOST:PORT)")
	rtt := flag.Duration("rtt", 0, "round-trip time the link adds")
	rate := flag.String("rate", "0", "link rate each way: 1Gbit, 100Mbit, 0 for none")
	flag.Parse()
	bps, err := shaper.ParseRate(*rate)
	if err != nil || *target == "" || *rtt < 0 {
		fmt.Fprintln(os.Stderr, "usage: shape -target HOST:PORT [-listen ADDR] [-rtt 20ms] [-rate 1Gbit]", err)
		os.Exit(2)
	}
	p, err := shaper.Listen(*listen, *target, *rtt, bps)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(p.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	p.Close()
}
