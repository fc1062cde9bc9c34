package ignore_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"ib/internal/backup"
	"ib/internal/manifest"
)

// The golden tree: ignore files that use every rule, and files that each
// rule should and should not catch, in nested folders.
var ignoreFiles = map[string]string{
	".gitignore": "# a comment, then a blank line\n\n" +
		"*.log\n!keep.log\n" + // glob and negation
		"\\#hash.txt\n\\!bang.txt\n" + // escaped # and !
		"trailing.txt   \n" + // trailing spaces dropped
		"space\\ end\\ \n" + // an escaped trailing space kept
		"/anchored.txt\n" + // leading slash anchors
		"mid/dle/x.txt\n" + // a middle slash anchors too
		"build/\n" + // folders only
		"*.tmp\n" +
		"data[0-9].bin\nfile[!0-9].dat\nimg[^a-c].png\n" + // ranges and negated sets
		"num[[:digit:]].x\nup[[:upper:]].y\nsp[[:space:]]c.z\n" + // POSIX classes
		"cache/**\n" + // everything inside, not the folder itself
		"**/deep.cfg\n" + // any depth
		"a/**/z.txt\n" + // zero or more folders
		"**foo\n" + // a plain star
		"logs/\n!logs/important.txt\n" + // no re-include under an ignored folder
		"?.q\n" +
		"linkdir/\n" + // a symlink is no folder
		"[]]br.txt\n" + // ']' first in a set
		"tab\tend\t\n", // tabs are not trailing spaces
	"sub/.gitignore":       "!sub.log\n*.bak\n*.crlf\r\n!keep.crlf\r\n/only-here.txt\n",
	"sub/.ibignore":        "!want.bak\n*.secret\n!public.secret\n",
	"sub/inner/.gitignore": "!*.tmp\nnested/\n",
	"sub/inner/.ibignore":  "*.ib\n",
	"other/.gitignore":     "*\n!*.keep\n!*/\n",
}

var files = []string{
	"a.log", "keep.log", "sub/sub.log", "sub/x.log", "sub/inner/y.log",
	"#hash.txt", "x#hash.txt", "!bang.txt", "bang.txt",
	"trailing.txt", "trailing.txt   ", "space end ", "space end",
	"anchored.txt", "sub/anchored.txt",
	"mid/dle/x.txt", "sub/mid/dle/x.txt", "mid/dle/y.txt",
	"build/out.o", "sub/build/out.o", "notbuild/build", "sub/build.txt",
	"t.tmp", "sub/t.tmp", "sub/inner/t.tmp", "sub/inner/deeper/t.tmp",
	"data1.bin", "dataX.bin", "data10.bin",
	"file1.dat", "fileX.dat", "file.dat",
	"imga.png", "imgd.png", "sub/imgz.png",
	"num7.x", "numa.x", "upA.y", "upa.y", "sp c.z", "spxc.z",
	"cache/a", "cache/b/c", "sub/cache/a",
	"deep.cfg", "x/deep.cfg", "x/y/z/deep.cfg", "deep.cfg.bak",
	"a/z.txt", "a/b/z.txt", "a/b/c/z.txt", "b/a/z.txt", "a/z.txt2",
	"foo", "barfoo", "x/foo", "x/foox", "foo.d/file",
	"logs/important.txt", "logs/a.txt", "sub/logs/a.txt",
	"a.q", "ab.q", "sub/b.q",
	"]br.txt", "xbr.txt",
	"tab\tend\t", "tab\tend",
	"sub/a.bak", "sub/want.bak", "sub/inner/b.bak",
	"sub/c.crlf", "sub/keep.crlf", "c.crlf",
	"sub/only-here.txt", "sub/inner/only-here.txt", "only-here.txt",
	"sub/pw.secret", "sub/public.secret", "sub/inner/x.secret",
	"sub/inner/nested/a", "sub/inner/n.ib", "sub/n.ib",
	"other/x.txt", "other/y.keep", "other/d/z.keep", "other/d/w.txt",
	"plain.txt", "dir/plain.txt",
}

var symlinks = map[string]string{"link.log": "a.log", "linkdir": "dir", "sub/slink": "../plain.txt"}

func buildTree(t *testing.T, root string) {
	t.Helper()
	for name, content := range ignoreFiles {
		write(t, filepath.Join(root, name), content)
	}
	for _, f := range files {
		write(t, filepath.Join(root, f), "x")
	}
	for l, target := range symlinks {
		if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// gitList is the oracle: git ls-files of the untracked, not ignored files
// of a copy of root in which each folder's .ibignore is appended to its
// .gitignore.
func gitList(t *testing.T, root string) []string {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git is needed as the oracle of ignore semantics (.ci/run installs it)")
	}
	cp := t.TempDir()
	if out, err := exec.Command("cp", "-a", root+"/.", cp).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v %s", err, out)
	}
	for name := range ignoreFiles {
		if filepath.Base(name) != ".ibignore" {
			continue
		}
		ib, _ := os.ReadFile(filepath.Join(cp, name))
		gi := filepath.Join(filepath.Dir(filepath.Join(cp, name)), ".gitignore")
		old, err := os.ReadFile(gi)
		if err != nil {
			t.Fatalf("the golden tree keeps a .gitignore beside each .ibignore: %v", err)
		}
		if len(old) > 0 && old[len(old)-1] != '\n' {
			old = append(old, '\n')
		}
		if err := os.WriteFile(gi, append(old, ib...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) []byte {
		c := exec.Command(git, args...)
		c.Dir = cp
		c.Env = append(os.Environ(), "HOME="+cp, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := c.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return out
	}
	run("init", "-q")
	out := run("ls-files", "-z", "--others", "--exclude-per-directory=.gitignore")
	var list []string
	for p := range bytes.SplitSeq(bytes.TrimSuffix(out, []byte{0}), []byte{0}) {
		list = append(list, string(p))
	}
	slices.Sort(list)
	return list
}

func TestMatchesGit(t *testing.T) {
	root := t.TempDir()
	buildTree(t, root)
	want := gitList(t, root)

	var got, ignored []string
	_, err := backup.Plan(context.Background(), root, backup.PlanOptions{}, func(it backup.PlanItem) error {
		switch {
		case it.Ignored:
			ignored = append(ignored, it.Path)
		case it.Type == manifest.TypeFile || it.Type == manifest.TypeSymlink:
			got = append(got, it.Path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	paths := len(files) + len(ignoreFiles) + len(symlinks)
	if paths < 80 {
		t.Fatalf("the golden tree has %d paths, want at least 80", paths)
	}
	if len(want) < 20 || len(ignored) < 20 {
		t.Fatalf("the oracle keeps %d and ib ignores %d paths: the tree does not exercise the rules", len(want), len(ignored))
	}
	if !slices.Equal(got, want) {
		var onlyIB, onlyGit []string
		for _, p := range got {
			if !slices.Contains(want, p) {
				onlyIB = append(onlyIB, p)
			}
		}
		for _, p := range want {
			if !slices.Contains(got, p) {
				onlyGit = append(onlyGit, p)
			}
		}
		t.Fatalf("ib and git disagree.\nkept by ib only: %q\nkept by git only: %q", onlyIB, onlyGit)
	}
	t.Logf("%d paths: git and ib keep the same %d files and symlinks", paths, len(got))

	// Spot checks, so that a broken oracle cannot pass silently.
	for _, p := range []string{"keep.log", "sub/sub.log", "sub/want.bak", "sub/keep.crlf", "sub/public.secret", "cache", "linkdir", "space end", "sub/inner/t.tmp"} {
		if slices.Contains(ignored, p) {
			t.Errorf("%s should be kept", p)
		}
	}
	for _, p := range []string{"a.log", "logs", "build", "trailing.txt", "space end ", "#hash.txt", "!bang.txt", "num7.x", "barfoo", "a/b/c/z.txt", "sub/inner/nested"} {
		if !slices.Contains(ignored, p) {
			t.Errorf("%s should be ignored", p)
		}
	}
}

func TestCRLFAndTrailingSpaces(t *testing.T) {
	got := strings.Join(texts("a \r\n\\#b\r\n\r\nc\\ \nd\\  \n# x\n!e/\n  \n"), "|")
	if want := "a|\\#b|c\\ |d\\ |!e/"; got != want {
		t.Fatalf("parsed %q, want %q", got, want)
	}
}
