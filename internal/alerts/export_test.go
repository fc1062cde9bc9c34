package alerts

// SetFree replaces the free-space probe (tests).
func (a *Alerter) SetFree(f func(dir string) (free, total uint64, err error)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.free = f
}
