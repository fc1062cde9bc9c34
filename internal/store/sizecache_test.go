package store

import (
	"strconv"
	"testing"
)

func TestSizeCacheIsBounded(t *testing.T) {
	c := sizeCache{max: 100}
	for i := range 1000 {
		c.Store(strconv.Itoa(i), int64(i))
	}
	if c.Len() != 100 {
		t.Fatalf("holds %d sizes, want 100", c.Len())
	}
	if _, ok := c.Load("0"); ok {
		t.Error("the oldest size is still held")
	}
	if v, ok := c.Load("999"); !ok || v != 999 {
		t.Errorf("newest: %d %v", v, ok)
	}
	c.Store("999", 5)
	if v, _ := c.Load("999"); v != 5 || c.Len() != 100 {
		t.Errorf("a stored key again: %d, %d held", v, c.Len())
	}
}
