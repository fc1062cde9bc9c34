package backup

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestQuestionsAreBatched: CIDs named slowly (one a millisecond) are asked
// about together, at most one question that is not full per questionGap,
// and every CID exactly once; CIDs named fast go in full batches (after a
// first question with what was there at once).
func TestQuestionsAreBatched(t *testing.T) {
	collect := func(feed func(chan<- source), answer time.Duration) ([][]source, time.Duration) {
		in, batches := make(chan source), make(chan []source, 1000)
		var inFlight atomic.Int64
		var pace answerPace
		pace.took(answer)
		start := time.Now()
		go func() { defer close(in); feed(in) }()
		if err := collectBatches(context.Background(), in, batches, &inFlight, &pace); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		close(batches)
		var out [][]source
		for b := range batches {
			out = append(out, b)
		}
		return out, took
	}

	slowly := func(in chan<- source) {
		for i := range 200 {
			in <- source{cid: fmt.Sprint("slow", i)}
			time.Sleep(time.Millisecond)
		}
	}
	slow, took := collect(slowly, time.Millisecond)
	seen := map[string]int{}
	for _, b := range slow {
		for _, s := range b {
			seen[s.cid]++
		}
	}
	if len(seen) != 200 {
		t.Fatalf("%d distinct CIDs asked about, want 200", len(seen))
	}
	for c, n := range seen {
		if n != 1 {
			t.Fatalf("%s asked about %d times", c, n)
		}
	}
	if most := int(took/questionGap) + 2; len(slow) > most || len(slow) < 2 {
		t.Fatalf("200 CIDs over %s made %d questions; want 2 to %d", took, len(slow), most)
	}
	// A server that took 100 ms to answer is asked no more often.
	paced, took := collect(slowly, 100*time.Millisecond)
	if most := int(took/(100*time.Millisecond)) + 2; len(paced) > most || len(paced) < 2 {
		t.Fatalf("200 CIDs over %s to a server answering in 100 ms made %d questions; want 2 to %d", took, len(paced), most)
	}

	fast, _ := collect(func(in chan<- source) {
		for i := range 2500 {
			in <- source{cid: fmt.Sprint("fast", i)}
		}
	}, 100*time.Millisecond) // full batches go at once, however slow the answers
	// The first question goes at once with what is there; the next fill.
	var sizes []int
	total := 0
	for _, b := range fast {
		sizes = append(sizes, len(b))
		total += len(b)
	}
	full := 0
	for _, n := range sizes {
		if n == 1000 {
			full++
		}
	}
	if total != 2500 || full != 2 || len(sizes) > 4 {
		t.Fatalf("2,500 CIDs named at once were asked about in batches of %v, want two full ones among at most four", sizes)
	}
}
