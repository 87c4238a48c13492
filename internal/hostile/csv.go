package hostile

// csvFiles are CSV drops: line ends, wide rows, control characters, huge
// cells and columns.
func csvFiles() []File { return nil }
