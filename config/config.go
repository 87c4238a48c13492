// Package config reads usagedrop's YAML configuration.
//
// The flow is DefaultConfig → Parse → Validate. Parse expands ${ENV}
// references, rejects unknown keys (with a did-you-mean) and values of
// the wrong type, and reads *_file secrets; Validate checks what the
// values mean. Both report every problem at once as
// "line N: key: reason (got "value")", and a file Parse refuses also
// gets Validate's word on the keys that were read (check.go).
// Nothing here knows how sources or Zuora work: the pipeline maps these
// plain values onto the backends.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Builtin is the endpoint value that runs Zuora's simulator in-process.
const Builtin = "builtin"

// Secret is a string that never prints itself.
type Secret string

// String redacts the secret so that logging a config cannot leak it.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "**redacted**"
}

// MarshalYAML redacts the secret when a config is printed.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// Value returns the secret itself, for the one place that sends it.
func (s Secret) Value() string { return string(s) }

// Duration is a time.Duration written as "2s" or "1h30m" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: not a duration like 2s or 5m (got %q)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back in Go's notation.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Config is the whole file.
type Config struct {
	// Instance names this daemon in claims on shared folders; default the
	// host name. Two daemons on one folder must have different names.
	Instance string `yaml:"instance"`
	// Ledger is the ledger's file, or a postgres:// DSN: a PostgreSQL
	// ledger a fleet of daemons shares. Its password comes from
	// LedgerPasswordFile or PGPASSWORD, never from the DSN.
	Ledger             string `yaml:"ledger"`
	LedgerPasswordFile string `yaml:"ledger_password_file"`
	LedgerPassword     Secret `yaml:"-"`
	// LedgerLease is how long a daemon of a fleet on a PostgreSQL ledger
	// holds a drop without renewing it: a daemon that dies has its drops
	// taken over by another after about this long. Default 15s.
	LedgerLease Duration `yaml:"ledger_lease"`
	Spool       string   `yaml:"spool"`
	// Retention is how long finished drops stay in the ledger. A pruned
	// drop's bytes are no longer recognised as a duplicate. Zero keeps
	// them forever.
	Retention Duration `yaml:"retention"`
	// Workers is how many drops are worked on at once.
	Workers int `yaml:"workers"`
	// HTTP is the address of the status, health and metrics endpoint;
	// "off" disables it.
	HTTP string `yaml:"http"`
	// HTTPAuth guards every endpoint but /healthz. It is required when
	// HTTP listens on anything but this machine.
	HTTPAuth HTTPAuth `yaml:"http_auth"`
	Zuora    Zuora    `yaml:"zuora"`
	Sources  []Source `yaml:"sources"`
	// Limits caps what one drop may cost; zero keeps each default.
	Limits Limits `yaml:"limits"`
	// Log is the log's format and level.
	Log Log `yaml:"log"`
	// Readiness says when /readyz reports the daemon not ready.
	Readiness Readiness `yaml:"readiness"`
	// Notify is what every source's notifications share.
	Notify Notify `yaml:"notify"`
	// TimeZone is the IANA zone (e.g. Europe/Paris) of the times in the
	// reports users read ("1 Dec 2026 14:05 CET"); empty is UTC. The
	// Mediation time_zone under zuora.event is another matter: the zone
	// of the dates sent to a meter.
	TimeZone string `yaml:"time_zone"`

	lines map[string]int // key path → YAML line, for messages
}

// HTTPAuth says who may read the status and metrics endpoints: clients
// send a bearer token, or a user and password (HTTP basic). The secrets
// are read from files, so they stay out of the config and the process
// list.
type HTTPAuth struct {
	// TokenFile holds the bearer token ("Authorization: Bearer TOKEN").
	TokenFile string `yaml:"token_file"`
	// User and PasswordFile are for basic auth.
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"`

	// Token and Password are what the files hold, once parsed.
	Token    Secret `yaml:"-"`
	Password Secret `yaml:"-"`
}

// Enabled reports whether requests must carry credentials.
func (a HTTPAuth) Enabled() bool { return a.TokenFile != "" || a.User != "" }

// Zuora says how to reach the tenant.
type Zuora struct {
	// Endpoint is a REST base URL, a shortcut name from Endpoints, or
	// "builtin" for the in-process simulator.
	Endpoint     string `yaml:"endpoint"`
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	// ClientSecretFile, when set, is read for the secret (systemd
	// credentials, Kubernetes secrets).
	ClientSecretFile string `yaml:"client_secret_file"`
	// DateFormat is the date order of the Zuora API user's locale.
	DateFormat string `yaml:"date_format"`
	// API is the import API: "file" (POST /v1/usage, the default),
	// "object", "mediation" or "soap".
	API string `yaml:"api"`
	// Meter is the Mediation meter's global id (api: mediation).
	Meter string `yaml:"meter"`
	// Event maps the template's columns onto the meter's event fields
	// (api: mediation).
	Event Event `yaml:"event"`
	// SOAPEndpoint, Username and Password are for api: soap, e.g.
	// https://apisandbox.zuora.com/apps/services/a/119.0.
	SOAPEndpoint string `yaml:"soap_endpoint"`
	Username     string `yaml:"username"`
	Password     Secret `yaml:"password"`
	// Columns is the template header sent to Zuora, in order.
	Columns []string `yaml:"columns"`
	// CustomFields are custom fields of the tenant's Usage object
	// (Region__c) to pass through: a column of the template (added after
	// Columns unless Columns places it) for api: file and soap, a field of
	// each record for api: object, and for api: mediation the event field
	// Event.Fields maps it to (required there). A source's file gives each
	// its values from the column of that name, or of that name without
	// "__c", or the one the source's columns: maps to it.
	CustomFields []string `yaml:"custom_fields"`
	EntityIDs    string   `yaml:"entity_ids"`
	OrgIDs       string   `yaml:"org_ids"`
	// Poll is the longest wait between two status checks of an import.
	Poll Duration `yaml:"poll"`
	// Backoff and BackoffMax shape the wait before a failed call or step
	// is tried again: random(0, min(max, backoff·2^attempt)).
	Backoff    Duration `yaml:"backoff"`
	BackoffMax Duration `yaml:"backoff_max"`
	// MaxConcurrency is how many requests may be in flight to the tenant
	// at once: this daemon's, or with a PostgreSQL ledger the whole
	// fleet's together.
	MaxConcurrency int `yaml:"max_concurrency"`
	// RequestsPerMinute is how many requests may start in a minute, the
	// fleet's together as MaxConcurrency; zero sets no budget (a 429 is
	// waited out as Zuora's Retry-After says).
	RequestsPerMinute int `yaml:"requests_per_minute"`
}

// DefaultMaxConcurrency is zuora.max_concurrency's default: below the
// tenant's default concurrency limit of 40 (zuora-api.md §Limits), which
// every integration on the tenant shares, so that ours leaves room for
// the others.
const DefaultMaxConcurrency = 32

// Source is one drop folder. Which keys apply depends on Type.
type Source struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // local, s3, sftp
	Path string `yaml:"path"` // local and sftp: the drop folder

	Settle   Duration `yaml:"settle"`
	Interval Duration `yaml:"interval"` // how often to list
	Lease    Duration `yaml:"lease"`    // how long a claim holds without renewal

	ImportedDir string `yaml:"imported_dir"`
	FailedDir   string `yaml:"failed_dir"`

	// sftp
	Address       string   `yaml:"address"`
	User          string   `yaml:"user"`
	Password      Secret   `yaml:"password"`
	PasswordFile  string   `yaml:"password_file"`
	KeyFile       string   `yaml:"key_file"`
	KeyPassphrase Secret   `yaml:"key_passphrase"`
	KnownHosts    string   `yaml:"known_hosts"`
	HostKey       string   `yaml:"host_key"`
	Timeout       Duration `yaml:"timeout"`

	// s3
	Bucket          string `yaml:"bucket"`
	Prefix          string `yaml:"prefix"`
	Region          string `yaml:"region"`
	Endpoint        string `yaml:"endpoint"`
	PathStyle       bool   `yaml:"path_style"`
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey Secret `yaml:"secret_access_key"`
	SSE             string `yaml:"sse"`
	SSEKMSKeyID     string `yaml:"sse_kms_key_id"`
	// SQSQueueURL, when set, is a queue of S3 event notifications for the
	// bucket: new files are seen at once instead of at the next listing.
	SQSQueueURL string `yaml:"sqs_queue_url"`

	// how to read the files
	DateFormat   string            `yaml:"date_format"`
	DecimalComma string            `yaml:"decimal_comma"`
	Sheet        string            `yaml:"sheet"`
	Columns      map[string]string `yaml:"columns"`
	Encoding     string            `yaml:"encoding"`

	// Notify lists who is told when a drop is rejected, fails or is
	// stuck.
	Notify []NotifyTarget `yaml:"notify"`
}

// Endpoints are Zuora's documented REST hosts by short name.
var Endpoints = map[string]string{
	"us-production":     "https://rest.zuora.com",
	"us-cloud1":         "https://rest.na.zuora.com",
	"us-sandbox":        "https://rest.apisandbox.zuora.com",
	"us-cloud1-sandbox": "https://rest.sandbox.na.zuora.com",
	"us-developer":      "https://rest.test.zuora.com",
	"eu-production":     "https://rest.eu.zuora.com",
	"eu-sandbox":        "https://rest.sandbox.eu.zuora.com",
	"eu-developer":      "https://rest.test.eu.zuora.com",
	"ap-production":     "https://rest.ap.zuora.com",
	"ap-developer":      "https://rest.test.ap.zuora.com",
}

// DefaultLedgerLease is Config.LedgerLease's default.
const DefaultLedgerLease = 15 * time.Second

// DefaultConfig is what runs with no config file: a local drop folder in
// the working directory and the built-in Zuora simulator.
func DefaultConfig() *Config {
	c := &Config{
		Ledger:    "usagedrop.db",
		Retention: Duration(400 * 24 * time.Hour),
		Spool:     "spool",
		Workers:   2,
		HTTP:      "127.0.0.1:8321",
		Zuora:     Zuora{Endpoint: Builtin, DateFormat: "MM/DD/YYYY", API: "file", Poll: Duration(30 * time.Second)},
		Sources:   []Source{{Name: "drop", Type: "local", Path: "drop"}},
	}
	c.applyDefaults()
	return c
}

// ParseFile reads and parses the config at path.
func ParseFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// maxConfigSize bounds what Parse reads; a config is a few kilobytes.
const maxConfigSize = 1 << 20

// Parse reads a config over the defaults. ${VAR} in a value is replaced by
// the environment variable VAR; a reference to an unset variable is an
// error, so that a typo does not become an empty password. Comments are
// left alone.
//
// A config that cannot be read gives a *ValidationError listing every
// problem at once, as "line N: key: reason (got "value")": YAML syntax,
// unknown or repeated keys, values of the wrong type, unset variables,
// unreadable secret files, and what Validate finds in the keys that were
// read, so that one run tells the operator everything to fix.
func Parse(r io.Reader) (*Config, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(raw) > maxConfigSize {
		return nil, newValidationError([]problem{{reason: fmt.Sprintf("the file is larger than %d bytes, which no config is; is it the right file?", maxConfigSize)}})
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, newValidationError([]problem{syntaxProblem(raw, err)})
	}
	bad := map[string]bool{} // keys already reported, which Validate need not repeat
	var problems []problem
	expandEnv(&root, "", os.LookupEnv, &problems, bad)
	problems = append(problems, checkShape(&root, bad)...)
	c := DefaultConfig()
	c.Sources = nil
	c.lines = map[string]int{}
	collectLines(&root, "", c.lines)
	if len(root.Content) > 0 {
		// checkShape took out every node the decoder would refuse; an
		// error here is a gap in it, said in the decoder's words rather
		// than lost.
		if err := root.Decode(c); err != nil {
			problems = append(problems, problem{reason: "cannot be read: " + strings.TrimPrefix(err.Error(), "yaml: ")})
		}
	}
	problems = append(problems, c.readSecretFiles(bad)...)
	c.applyDefaults()
	if len(problems) > 0 {
		for _, p := range c.validate() {
			if !covered(p.key, bad) {
				problems = append(problems, p)
			}
		}
		return nil, newValidationError(problems)
	}
	return c, nil
}

func collectLines(n *yaml.Node, path string, out map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			collectLines(c, path, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := join(path, n.Content[i].Value)
			out[k] = n.Content[i].Line
			collectLines(n.Content[i+1], k, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			k := fmt.Sprintf("%s[%d]", path, i)
			out[k] = c.Line
			collectLines(c, k, out)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// readSecretFiles reads each *_file secret, and names each file that
// cannot be read.
func (c *Config) readSecretFiles(bad map[string]bool) []problem {
	var problems []problem
	read := func(key string, file string, dst *Secret) {
		if file == "" {
			return
		}
		b, err := os.ReadFile(file)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			problems = append(problems, problem{line: c.Line(key), key: key, reason: "cannot be read: " + err.Error(), got: file, hasGot: true})
			bad[key] = true
			return
		}
		*dst = Secret(strings.TrimRight(string(b), "\r\n"))
	}
	read("zuora.client_secret_file", c.Zuora.ClientSecretFile, &c.Zuora.ClientSecret)
	read("ledger_password_file", c.LedgerPasswordFile, &c.LedgerPassword)
	read("http_auth.token_file", c.HTTPAuth.TokenFile, &c.HTTPAuth.Token)
	read("http_auth.password_file", c.HTTPAuth.PasswordFile, &c.HTTPAuth.Password)
	for i := range c.Sources {
		s := &c.Sources[i]
		read(fmt.Sprintf("sources[%d].password_file", i), s.PasswordFile, &s.Password)
		for j, t := range s.Notify {
			if t.Email != nil {
				read(fmt.Sprintf("sources[%d].notify[%d].email.password_file", i, j), t.Email.PasswordFile, &t.Email.Password)
			}
		}
	}
	return problems
}

func (c *Config) applyDefaults() {
	if c.Instance == "" {
		c.Instance, _ = os.Hostname()
	}
	if c.LedgerLease == 0 {
		c.LedgerLease = Duration(DefaultLedgerLease)
	}
	if c.Zuora.API == "" {
		c.Zuora.API = "file"
	}
	if c.Zuora.DateFormat == "" {
		c.Zuora.DateFormat = "MM/DD/YYYY"
	}
	c.Zuora.Event.applyDefaults()
	if c.Zuora.Poll == 0 {
		c.Zuora.Poll = Duration(30 * time.Second)
	}
	if c.Zuora.Backoff == 0 {
		c.Zuora.Backoff = Duration(time.Second)
	}
	if c.Zuora.BackoffMax == 0 {
		c.Zuora.BackoffMax = Duration(5 * time.Minute)
	}
	if c.Zuora.MaxConcurrency == 0 {
		c.Zuora.MaxConcurrency = DefaultMaxConcurrency
	}
	if u, ok := Endpoints[c.Zuora.Endpoint]; ok {
		c.Zuora.Endpoint = u
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
	c.notifyDefaults()
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.Settle == 0 {
			s.Settle = Duration(2 * time.Second)
		}
		if s.Interval == 0 {
			s.Interval = Duration(defaultInterval(s.Type))
		}
		if s.Lease == 0 {
			s.Lease = Duration(time.Hour)
		}
		if s.Timeout == 0 {
			s.Timeout = Duration(30 * time.Second)
		}
	}
}

func defaultInterval(typ string) time.Duration {
	if typ == "local" {
		// fsnotify does the quick work; the rescan covers network mounts
		// and missed events.
		return 30 * time.Second
	}
	return 15 * time.Second
}

// Line returns the YAML line of a key path such as "sources[1].path", or 0.
func (c *Config) Line(path string) int { return c.lines[path] }

// Limits cap what one dropped file may make the daemon read, hold and
// write. Zero (or leaving a key out) keeps the default, given with each
// key; config.example.yaml says what the user reads when a cap is hit.
// The fields match convert.Caps one for one, so that
// convert.Caps(cfg.Limits) converts them.
type Limits struct {
	MaxFileSize     int64 `yaml:"max_file_size"`     // bytes of one dropped file; 1073741824 (1 GiB)
	MaxColumns      int   `yaml:"max_columns"`       // values in one row; 16384
	MaxCellBytes    int   `yaml:"max_cell_bytes"`    // bytes of one value; 131072
	MaxRowBytes     int   `yaml:"max_row_bytes"`     // bytes of one CSV row; 1048576
	MaxHeaderCells  int   `yaml:"max_header_cells"`  // column names kept for the report; 100
	MaxProblems     int   `yaml:"max_problems"`      // problems listed, the rest counted; 100
	MaxReportBytes  int   `yaml:"max_report_bytes"`  // bytes of text in the problems listed; 65536
	MaxMessageBytes int   `yaml:"max_message_bytes"` // bytes of one problem's reason; 2048
	MaxValueBytes   int   `yaml:"max_value_bytes"`   // bytes of a value or name quoted in a problem; 100
	MaxZipEntries   int   `yaml:"max_zip_entries"`   // entries in a dropped zip; 1000
	MaxZipBytes     int64 `yaml:"max_zip_bytes"`     // bytes a zip expands to; 1073741824 (1 GiB)
	MaxZipRatio     int   `yaml:"max_zip_ratio"`     // expansion of an entry over 1 MiB; 200
}
