package apiclient

// SetMaxManifest lowers the manifest bound for a test.
func SetMaxManifest(n int64) (restore func()) {
	old := maxManifest
	maxManifest = n
	return func() { maxManifest = old }
}
