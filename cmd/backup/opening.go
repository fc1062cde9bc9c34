package backup

import (
	"context"
	"sync"

	"ib/internal/apiclient"
	"ib/internal/manifest"
	"ib/internal/progress"
)

// opening is what a backup asks the server before it reads anything: what
// the token may do, a job for the activity log, and the newest backup of
// its tags. The three questions go out at once: over a long round trip one
// wait instead of three.
type opening struct {
	inline bool       // the server takes inline CIDs
	job    *serverJob // nil: no activity job
	latest *latestAnswer
}

// latestAnswer is the server's newest backup of tags, or its error.
type latestAnswer struct {
	tags manifest.Tags
	s    manifest.Summary
	err  error
}

// open asks the opening questions; askLatest is false when a pre hook may
// still change the tags. A token the server refuses is an error (and ends
// the job, if one started).
func open(ctx context.Context, o *common, api *apiclient.Client, tags manifest.Tags, c *progress.Counters, askLatest bool) (opening, error) {
	var op opening
	var tokenErr error
	var wg sync.WaitGroup
	wg.Go(func() { op.inline, tokenErr = checkToken(ctx, api) })
	wg.Go(func() { op.job = startServerJob(ctx, o, api, "backup", tags, c) })
	if askLatest {
		wg.Go(func() {
			s, err := api.Latest(ctx, tags)
			op.latest = &latestAnswer{tags: tags, s: s, err: err}
		})
	}
	wg.Wait()
	if tokenErr != nil {
		op.job.end(ctx, apiclient.JobEnd{}, tokenErr)
		return opening{}, tokenErr
	}
	return op, nil
}

// latestFor returns the newest backup of tags: the opening's answer if it
// asked about these tags, else the server's now.
func (op opening) latestFor(ctx context.Context, api *apiclient.Client, tags manifest.Tags) (manifest.Summary, error) {
	if op.latest != nil && op.latest.tags.Canonical() == tags.Canonical() {
		return op.latest.s, op.latest.err
	}
	return api.Latest(ctx, tags)
}
