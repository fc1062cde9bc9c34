// Package ignore decides which paths a backup leaves out, reading every
// .gitignore and .ibignore on the way down with git's exact semantics.
//
// Rules, as git has them (gitignore(5) and git's dir.c and wildmatch.c):
//   - Lines are split on "\n", a "\r" before it is dropped (CRLF files), a
//     UTF-8 BOM at the start is skipped. Blank lines and lines starting
//     with "#" are no patterns; "\#" is a literal "#".
//   - Trailing spaces are dropped unless escaped with a backslash.
//   - A leading "!" negates ("\!" is a literal "!"). A trailing "/"
//     matches directories only and is then removed.
//   - A pattern with no other "/" matches the name at any depth below its
//     file's folder; any other is matched against the path relative to
//     that folder (a leading "/" only anchors), with "*", "?" and "[...]"
//     never matching "/".
//   - "**/" at the start, "/**" at the end and "/**/" in the middle match
//     any number of folders; other "**" are plain "*".
//   - "[...]" takes "!" or "^" to negate, ranges, POSIX classes
//     ([:alpha:] and friends, ASCII only) and backslash escapes.
//   - Within one folder .ibignore's patterns come after .gitignore's, so
//     they may re-include with "!". The last matching pattern of the
//     deepest folder that has one decides.
//   - A folder that is ignored is not read: nothing below it can be
//     re-included (git's rule, and what makes a 200 GB ignored cache cost
//     nothing).
package ignore
