// Package frontend is ib's web UI: Preact with htm as plain ES modules,
// vendored at a pinned version (vendor/), so `go build` alone embeds a
// complete UI: there is no build step to forget.
//
// The server answers index.html for every non-API path, and the app routes
// on the client: / backups, /backups/{id}?path=DIR, /search?q=TEXT,
// /downloads, /stats.
package frontend

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed index.html app.js style.css vendor/*.mjs
var files embed.FS

// Handler serves the static files, and index.html for any other path.
func Handler() http.Handler {
	static := http.FileServer(http.FS(files))
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		panic("frontend: index.html is not embedded: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name != "" && name != "index.html" {
			if fi, err := fs.Stat(files, name); err == nil && !fi.IsDir() {
				if strings.HasPrefix(name, "vendor/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				static.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(index)
	})
}
