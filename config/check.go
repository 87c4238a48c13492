package config

// Checking a config as written: every problem at once, each as
// "line N: key: reason (got "value")" in words an operator reads without
// knowing yaml.v3, before the file is decoded. Parse walks the YAML tree
// against the Config type, so unknown keys (with a did-you-mean), wrong
// types and repeated keys are all found in one pass; the bad nodes are
// then taken out, so that decoding the rest succeeds and Validate can
// still speak about the keys that were fine.

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"usagedrop/internal/endpoint"
	"usagedrop/internal/safetext"
)

// problem is one mistake in a config file.
type problem struct {
	line   int    // 1-based; 0 when the key is not in the file
	key    string // key path such as sources[0].settle; empty for the file as a whole
	reason string
	got    string
	hasGot bool
}

// maxGot is how much of a value a problem quotes.
const maxGot = 100

func (p problem) String() string {
	var b strings.Builder
	if p.line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.line)
	}
	if p.key != "" {
		b.WriteString(p.key + ": ")
	}
	b.WriteString(p.reason)
	if p.hasGot {
		fmt.Fprintf(&b, " (got %q)", safetext.Clip(p.got, maxGot))
	}
	return b.String()
}

// newValidationError sorts problems into the order of the file (those
// with no line last) and makes the error of them.
func newValidationError(ps []problem) *ValidationError {
	slices.SortStableFunc(ps, func(a, b problem) int {
		if (a.line == 0) != (b.line == 0) {
			if a.line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.line, b.line)
	})
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return &ValidationError{Problems: out}
}

// covered reports whether key is, or lies under, one of the keys in bad:
// a value that could not be read says nothing further worth a line.
func covered(key string, bad map[string]bool) bool {
	for k := key; k != ""; k = parentKey(k) {
		if bad[k] {
			return true
		}
	}
	return false
}

// parentKey is the key path above k: "sources[0]" for "sources[0].path",
// "sources" for "sources[0]", "" for "sources".
func parentKey(k string) string {
	i := strings.LastIndexAny(k, ".[")
	if i < 0 {
		return ""
	}
	return k[:i]
}

// syntaxProblem turns yaml.v3's parse error into a problem with its line.
// yaml.v3 leaves the line out of some messages ("mapping values are not
// allowed in this context") and gives, for others, a line next to the
// mistake; the line is the first one whose end makes the file fail the
// same way, found by parsing ever longer beginnings of the file.
func syntaxProblem(raw []byte, err error) problem {
	line, msg := yamlMessage(err)
	if n := firstBadLine(raw, msg); n > 0 {
		line = n
	}
	reason := "the file is not valid YAML: " + msg
	lines := strings.Split(string(raw), "\n")
	if strings.Contains(msg, "cannot start any token") && line > 0 && line <= len(lines) && strings.Contains(lines[line-1], "\t") {
		reason += " (is a tab indenting the line? YAML indents with spaces only)"
	}
	if strings.Contains(msg, "mapping values are not allowed") {
		reason += " (is a colon in a value? put the value in quotes; or is a key indented wrongly?)"
	}
	return problem{line: line, reason: reason}
}

// yamlMessage splits yaml.v3's "yaml: line N: reason" into N and reason.
func yamlMessage(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				return n, rest[i+2:]
			}
		}
	}
	return 0, msg
}

// firstBadLine returns the number of the first line whose end makes
// parsing fail with the reason want, or 0.
func firstBadLine(raw []byte, want string) int {
	// Parsing every beginning costs the square of the file's size; a
	// config is a few kilobytes, and past this the line is left out.
	const most = 64 << 10
	if len(raw) > most {
		return 0
	}
	lines := strings.SplitAfter(string(raw), "\n")
	var prefix strings.Builder
	for i, l := range lines {
		prefix.WriteString(l)
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(prefix.String()), &n); err != nil {
			if _, msg := yamlMessage(err); msg == want {
				return i + 1
			}
		}
	}
	return 0
}

// expandEnv replaces ${VAR} in every scalar by the environment's value
// and names each reference to an unset variable. A plain scalar is typed
// again from its new text, so "workers: ${N}" is a number once N is set.
func expandEnv(n *yaml.Node, path string, lookup func(string) (string, bool), ps *[]problem, bad map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandEnv(c, path, lookup, ps, bad)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandEnv(n.Content[i+1], join(path, n.Content[i].Value), lookup, ps, bad)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandEnv(c, fmt.Sprintf("%s[%d]", path, i), lookup, ps, bad)
		}
	case yaml.ScalarNode:
		if !envRef.MatchString(n.Value) {
			return
		}
		written := n.Value
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := envRef.FindStringSubmatch(m)[1]
			v, ok := lookup(name)
			if !ok {
				*ps = append(*ps, problem{line: n.Line, key: path,
					reason: "environment variable " + name + " is not set", got: written, hasGot: true})
				bad[path] = true
			}
			return v
		})
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			n.Tag = plainTag(n.Value)
		}
	}
}

// plainTag is the tag YAML gives text written without quotes, kept to
// numbers and booleans: a variable holding "null" or "~" stays that text,
// so a password never turns empty.
func plainTag(text string) string {
	var v yaml.Node
	if yaml.Unmarshal([]byte(text), &v) == nil && len(v.Content) == 1 && v.Content[0].Kind == yaml.ScalarNode {
		switch tag := v.Content[0].ShortTag(); tag {
		case "!!int", "!!float", "!!bool":
			return tag
		}
	}
	return "!!str"
}

// shape walks the YAML tree against the Go type it decodes into.
type shape struct {
	problems []problem
	bad      map[string]bool // key paths with a problem
	places   map[string][]string
	aliased  map[*yaml.Node]bool
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	durationType    = reflect.TypeFor[Duration]()
	secretType      = reflect.TypeFor[Secret]()
)

// checkShape reports unknown and repeated keys and values of the wrong
// type in root, read as a Config, and takes them out of the tree so that
// decoding the rest succeeds.
func checkShape(root *yaml.Node, bad map[string]bool) []problem {
	return checkShapeOf(root, reflect.TypeFor[Config](), bad)
}

func checkShapeOf(root *yaml.Node, t reflect.Type, bad map[string]bool) []problem {
	s := &shape{bad: bad, places: map[string][]string{}, aliased: map[*yaml.Node]bool{}}
	s.index(t, "", map[reflect.Type]bool{})
	for _, n := range root.Content {
		s.node(n, t, "")
	}
	return s.problems
}

func (s *shape) add(n *yaml.Node, key, reason string) {
	s.problems = append(s.problems, problem{line: n.Line, key: key, reason: reason})
	s.bad[key] = true
}

// wrong reports a value of the wrong kind, quoting it when it is a
// single value.
func (s *shape) wrong(n *yaml.Node, key, reason string) {
	if n.Kind == yaml.ScalarNode {
		s.addGot(n, key, reason, nil)
	} else {
		s.add(n, key, reason)
	}
	blank(n)
}

func (s *shape) addGot(n *yaml.Node, key, reason string, t reflect.Type) {
	p := problem{line: n.Line, key: key, reason: reason, got: n.Value, hasGot: true}
	if t == secretType {
		p.got = Secret(n.Value).String()
	}
	s.problems = append(s.problems, p)
	s.bad[key] = true
}

// blank empties a node that could not be read, so that decoding skips it
// and leaves the default in place.
func blank(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

func (s *shape) node(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		// An anchored value is checked once, where it is written: walking
		// it at every alias would take exponential time on a file of
		// aliases of aliases.
		if n.Alias == nil || s.aliased[n.Alias] {
			return
		}
		s.aliased[n.Alias] = true
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // left out: the default applies
	}
	if t != durationType && reflect.PointerTo(t).Implements(unmarshalerType) {
		// A type that reads itself says what is wrong in its own words.
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			_, msg := yamlMessage(err)
			msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
			if n.Kind == yaml.ScalarNode {
				s.addGot(n, path, msg, t)
			} else {
				s.add(n, path, msg)
			}
			blank(n)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		s.node(n, t.Elem(), path)
	case reflect.Interface:
		// Anything goes; whoever reads it checks it.
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if path == "" {
				s.wrong(n, path, "the file must be made of keys, such as ledger: and sources:, each on its own line")
				s.bad["sources"] = true // nothing was read, so nothing is missing either
			} else {
				s.wrong(n, path, "must hold keys, each on its own line indented below it")
			}
			return
		}
		s.mapping(n, path, func(k *yaml.Node) (reflect.Type, bool) {
			f, ok := fieldsOf(t)[k.Value]
			return f, ok
		}, func(k *yaml.Node, key string) {
			s.add(k, key, unknownKey(k.Value, t, path, s.places))
		})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			s.wrong(n, path, "must hold name: value pairs, each on its own line indented below it")
			return
		}
		s.mapping(n, path, func(*yaml.Node) (reflect.Type, bool) { return t.Elem(), true }, nil)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			reason := "must be a list, like [A, B] or one \"- item\" per line"
			if t.Elem().Kind() == reflect.Struct {
				reason = "must be a list, each entry starting with \"- \" on its own line"
			}
			s.wrong(n, path, reason)
			return
		}
		for i, c := range n.Content {
			s.node(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		s.leaf(n, t, path)
	}
}

// mapping checks each key of n: known (field gives its type), said once.
// Unknown and repeated keys are taken out of n.
func (s *shape) mapping(n *yaml.Node, path string, field func(k *yaml.Node) (reflect.Type, bool), unknown func(k *yaml.Node, key string)) {
	seen := map[string]int{}
	var keep []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			s.add(k, path, "a key must be a plain name")
			continue
		}
		key := join(path, k.Value)
		if k.Value == "<<" {
			s.add(k, path, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			s.add(k, key, fmt.Sprintf("is set twice (first on line %d); keep one", first))
			continue
		}
		seen[k.Value] = k.Line
		t, ok := field(k)
		if !ok {
			unknown(k, key)
			continue
		}
		s.node(v, t, key)
		keep = append(keep, k, v)
	}
	n.Content = keep
}

// leaf checks a single value by decoding it into its type, so the check
// and the decoder never disagree, and says what the type wants.
func (s *shape) leaf(n *yaml.Node, t reflect.Type, path string) {
	want := wants(t)
	if n.Kind == yaml.SequenceNode {
		s.add(n, path, want+", not a list")
		blank(n)
		return
	}
	if n.Kind == yaml.MappingNode {
		s.add(n, path, want+", not keys below it")
		blank(n)
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err == nil {
		return
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		var probe yaml.Node
		if yaml.Unmarshal([]byte(n.Value), &probe) == nil && len(probe.Content) == 1 &&
			probe.Content[0].Decode(reflect.New(t).Interface()) == nil {
			want += ", written without quotes"
		}
	}
	s.addGot(n, path, want, t)
	blank(n)
}

// wants says in plain words what a value of type t must be.
func wants(t reflect.Type) string {
	switch {
	case t == durationType || t == reflect.TypeFor[time.Duration]():
		return "must be a duration like 2s or 5m"
	case t.Kind() == reflect.Bool:
		return "must be true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "must be a number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "must be a number"
	case t.Kind() == reflect.String:
		return "must be a single value"
	}
	return "is not a value this key takes"
}

// fieldsOf maps the YAML keys of struct t to their types; fields that do
// not come from YAML (yaml:"-", unexported) are left out.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			for k, v := range fieldsOf(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// index records, for every key of the config, where it belongs
// ("zuora", "sources[N]"), so that a key written at the wrong level is
// sent where it goes.
func (s *shape) index(t reflect.Type, path string, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
		if t.Kind() == reflect.Slice {
			path += "[N]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	seen[t] = true
	defer delete(seen, t)
	for name, ft := range fieldsOf(t) {
		s.places[name] = append(s.places[name], path)
		s.index(ft, join(path, name), seen)
	}
}

// unknownKey says why a key is not one of struct t's, with the key meant
// when one is close, or the level the key belongs to.
func unknownKey(key string, t reflect.Type, path string, places map[string][]string) string {
	var names []string
	for name := range fieldsOf(t) {
		names = append(names, name)
	}
	slices.Sort(names)
	if m := closest(key, names); m != "" {
		return fmt.Sprintf("unknown key (did you mean %q?)", m)
	}
	where := places[key]
	if len(where) == 0 {
		// The right key at the wrong level, misspelt too.
		for name, ps := range places {
			if closest(key, []string{name}) != "" {
				key, where = name, ps
				break
			}
		}
	}
	if len(where) > 0 {
		slices.Sort(where)
		p := where[0]
		if p == "" {
			return fmt.Sprintf("unknown key here; %s is a key of the top level, not indented", key)
		}
		return fmt.Sprintf("unknown key here; %s belongs under %s", key, p)
	}
	if path == "" {
		return "unknown key (the keys are those of config.example.yaml)"
	}
	return "unknown key; the keys here are " + strings.Join(names, ", ")
}

// closest returns the name in names nearest to key when it is near
// enough to be the one meant: a case or dash slip, or one or two letters
// wrong in a longer word.
func closest(key string, names []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	best, bestD := "", 0
	for _, name := range names {
		d := editDistance(norm(key), norm(name))
		limit := 1
		if len(name) >= 6 {
			limit = 2
		}
		if d <= limit && (best == "" || d < bestD) {
			best, bestD = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes;
// keys are ASCII.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Summary describes a valid config in one line, for `usagedrop config
// check`: its sources and where Zuora is.
func (c *Config) Summary() string {
	var srcs []string
	for _, s := range c.Sources {
		srcs = append(srcs, fmt.Sprintf("%s (%s %s)", s.Name, s.Type, s.Where()))
	}
	n := "sources"
	if len(srcs) == 1 {
		n = "source"
	}
	return fmt.Sprintf("%d %s: %s; Zuora: %s, api %s", len(srcs), n, strings.Join(srcs, ", "),
		c.Zuora.EndpointKind(), c.Zuora.API)
}

// Where names the drop folder of s: a path, s3://bucket/prefix, or
// sftp://user@host:port/path.
func (s Source) Where() string {
	switch s.Type {
	case "s3":
		return "s3://" + s.Bucket + "/" + s.Prefix
	case "sftp":
		return "sftp://" + s.User + "@" + s.Address + s.Path
	}
	return s.Path
}

// EndpointKind says what kind of Zuora the endpoint is: the built-in
// simulator, one of Zuora's documented hosts by name (production,
// sandbox or developer), a server on this machine, or another URL.
func (z Zuora) EndpointKind() string {
	if z.Endpoint == Builtin {
		return "the built-in simulator (nothing reaches a real tenant)"
	}
	for _, name := range slices.Sorted(maps.Keys(Endpoints)) {
		if Endpoints[name] == strings.TrimRight(z.Endpoint, "/") {
			kind := "production"
			switch {
			case strings.Contains(name, "sandbox"):
				kind = "sandbox"
			case strings.Contains(name, "developer"):
				kind = "developer"
			}
			return fmt.Sprintf("%s tenant %s (%s)", kind, z.Endpoint, name)
		}
	}
	if u, err := url.Parse(z.Endpoint); err == nil && endpoint.Loopback(u.Hostname()) {
		return "a server on this machine at " + z.Endpoint + " (a simulator?)"
	}
	return "a tenant at " + z.Endpoint + " (not one of Zuora's documented hosts)"
}
