package backup

// SetAfterRead sets the hook called after each read of a file's bytes.
func SetAfterRead(f func(abs string)) { afterRead = f }

// SetBeforeOpen sets the hook called before a file is opened to be read.
func SetBeforeOpen(f func(abs string)) { beforeOpen = f }

// SetOnPrescan sets the hook called when a prescan starts.
func SetOnPrescan(f func()) { onPrescan = f }
