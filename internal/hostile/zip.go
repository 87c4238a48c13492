package hostile

// zipFiles are zip drops: many members, bombs, traversal, wide members.
func zipFiles() []File { return nil }
