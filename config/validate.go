package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"usagedrop/internal/endpoint"
	"usagedrop/usage"
)

// ValidationError lists every problem found in a config at once, so an
// operator fixes them in one pass.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "invalid config:\n  " + strings.Join(e.Problems, "\n  ")
}

// DateFormats are the date orders usagedrop reads and writes.
var DateFormats = []string{"MM/DD/YYYY", "DD/MM/YYYY", "DD.MM.YYYY", "YYYY-MM-DD"}

// TemplateColumns are the columns Zuora's usage template may have
// (usage.Columns), custom fields aside.
var TemplateColumns = usage.Columns()

// Validate checks the config and returns a *ValidationError naming every
// bad key, the reason and the value found, in the order of the file.
func (c *Config) Validate() error {
	if ps := c.validate(); len(ps) > 0 {
		return newValidationError(ps)
	}
	return nil
}

// validate lists the problems Validate reports.
func (c *Config) validate() []problem {
	v := &validator{c: c}
	v.ledger()
	v.check(c.Spool != "", "spool", "must be a directory path", c.Spool)
	v.check(c.Workers > 0 && c.Workers <= 64, "workers", "must be between 1 and 64", c.Workers)
	v.check(c.Instance != "" && !strings.ContainsAny(c.Instance, `/\ `), "instance",
		"must be a name without slashes or spaces", c.Instance)
	v.http()
	_, tzErr := c.Location()
	v.check(tzErr == nil, "time_zone", "must be an IANA time zone such as UTC or Europe/Paris", c.TimeZone)
	z := c.Zuora
	v.check(z.API != "mediation" || z.Meter != "", "zuora.meter", "api: mediation needs the meter's global id", z.Meter)
	if z.API == "soap" && z.Endpoint != Builtin {
		u, err := url.Parse(z.SOAPEndpoint)
		v.check(err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && strings.Contains(u.Path, "/apps/services/a/"), "zuora.soap_endpoint",
			"api: soap needs the SOAP URL, e.g. https://apisandbox.zuora.com/apps/services/a/119.0", z.SOAPEndpoint)
		v.secureURL("zuora.soap_endpoint", z.SOAPEndpoint)
		v.check(z.Username != "" && z.Password != "", "zuora.username", "api: soap needs username and password", z.Username)
	}
	if z.Endpoint != Builtin {
		u, err := url.Parse(z.Endpoint)
		v.check(err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "",
			"zuora.endpoint", "must be an https URL, a region name such as us-sandbox, or builtin", z.Endpoint)
		v.secureURL("zuora.endpoint", z.Endpoint)
		v.check(z.ClientID != "", "zuora.client_id", "is required for a real tenant", z.ClientID)
		v.check(z.ClientSecret != "", "zuora.client_secret", "is required for a real tenant", "")
	}
	v.check(slices.Contains(usage.DateFormats, z.DateFormat), "zuora.date_format",
		"must be MM/DD/YYYY (en_US API user) or DD/MM/YYYY (en_GB, en_AU)", z.DateFormat)
	v.check(slices.Contains([]string{"file", "object", "mediation", "soap"}, z.API), "zuora.api",
		"must be file, object, mediation or soap", z.API)
	for i, col := range z.Columns {
		v.check(slices.Contains(TemplateColumns, col) || slices.Contains(z.CustomFields, col), fmt.Sprintf("zuora.columns[%d]", i),
			"is not a column of Zuora's usage template ("+strings.Join(TemplateColumns, ", ")+") nor one of custom_fields", col)
		// The Usage object has no field for it (zuora-api.md, Object
		// API): its values would be dropped without a word.
		v.check(z.API != "object" || col != "PRODUCT_RATE_PLAN_CHARGE_ID", fmt.Sprintf("zuora.columns[%d]", i),
			"api: object cannot carry it (the Usage object has no such field); use api: file", col)
	}
	v.check(z.MaxConcurrency > 0, "zuora.max_concurrency",
		"must be at least 1: how many requests may be in flight to Zuora at once (the tenant allows 40 by default)", z.MaxConcurrency)
	v.check(z.RequestsPerMinute >= 0, "zuora.requests_per_minute",
		"must be 0 (no budget) or how many requests may start in a minute (an API sandbox allows 2,500)", z.RequestsPerMinute)
	v.customFields(z)
	v.event(z)
	v.limits(c.Limits)
	v.logging(c.Log, c.Readiness)
	v.notify()
	v.check(len(c.Sources) > 0, "sources", "at least one source is needed", len(c.Sources))
	names := map[string]bool{}
	for i, s := range c.Sources {
		v.source(i, s)
		v.check(!names[s.Name], fmt.Sprintf("sources[%d].name", i), "is used by another source", s.Name)
		names[s.Name] = true
	}
	return v.problems
}

type validator struct {
	c        *Config
	problems []problem
}

func (v *validator) check(ok bool, key, reason string, got any) {
	if ok {
		return
	}
	v.problems = append(v.problems, problem{line: v.c.Line(key), key: key, reason: reason, got: fmt.Sprint(got), hasGot: true})
}

// minTokenLen keeps a bearer token out of guessing range.
const minTokenLen = 16

// http checks the status endpoint's address and who may read it: what it
// serves names users' files and quotes their rows, so only this machine
// may read it without credentials.
func (v *validator) http() {
	addr, a := v.c.HTTP, v.c.HTTPAuth
	if addr == "off" || addr == "" {
		return
	}
	_, _, err := net.SplitHostPort(addr)
	v.check(err == nil, "http", `must be host:port, e.g. 127.0.0.1:8321, or "off"`, addr)
	v.check(a.Enabled() || endpoint.ListenLoopback(addr), "http",
		fmt.Sprintf("listening on %s needs http_auth (token_file, or user and password_file), "+
			"since /v1/drops shows file names and values from their rows; or listen on 127.0.0.1", addr), addr)
	v.check(a.TokenFile == "" || a.User == "", "http_auth.token_file",
		"choose token_file or user with password_file, not both", a.TokenFile)
	if a.TokenFile != "" {
		v.check(len(a.Token.Value()) >= minTokenLen, "http_auth.token_file",
			fmt.Sprintf("must hold a token of at least %d characters", minTokenLen), a.TokenFile)
	}
	v.check((a.User == "") == (a.PasswordFile == ""), "http_auth.user", "user and password_file go together", a.User)
	if a.User != "" && a.PasswordFile != "" {
		v.check(a.Password != "", "http_auth.password_file", "must hold a password", a.PasswordFile)
		v.check(!strings.Contains(a.User, ":"), "http_auth.user", "must not contain a colon (basic auth)", a.User)
	}
}

// secureURL checks a URL that a secret is sent to. A URL that is not
// even a URL is left to the key's own check, so it is said once.
func (v *validator) secureURL(key, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return
	}
	_, err = endpoint.Secure(raw)
	v.check(err == nil, key, "must be https unless it is this machine (localhost, 127.0.0.1, ::1): "+
		"the client secret and session would travel in clear", raw)
}

func (v *validator) source(i int, s Source) {
	k := func(name string) string { return fmt.Sprintf("sources[%d].%s", i, name) }
	v.check(s.Name != "" && !strings.ContainsAny(s.Name, "/\\ \x00"), k("name"),
		"must be a short name without slashes or spaces", s.Name)
	switch s.Type {
	case "local":
		v.check(s.Path != "", k("path"), "is required for a local source", s.Path)
	case "sftp":
		v.check(s.Address != "", k("address"), "is required for an sftp source (host:port)", s.Address)
		v.check(s.User != "", k("user"), "is required for an sftp source", s.User)
		v.check(s.Path != "", k("path"), "is required for an sftp source", s.Path)
		v.check(s.KnownHosts != "" || s.HostKey != "", k("known_hosts"),
			"an sftp source needs known_hosts or host_key: host keys are always verified", "")
	case "s3":
		v.check(s.Bucket != "", k("bucket"), "is required for an s3 source", s.Bucket)
		v.check((s.AccessKeyID == "") == (s.SecretAccessKey == ""), k("access_key_id"),
			"access_key_id and secret_access_key go together", s.AccessKeyID)
	default:
		v.check(false, k("type"), "must be local, s3 or sftp", s.Type)
	}
	v.check(s.DateFormat == "" || slices.Contains(DateFormats, s.DateFormat), k("date_format"),
		"must be one of "+strings.Join(DateFormats, ", "), s.DateFormat)
	v.check(slices.Contains([]string{"", "yes", "no"}, s.DecimalComma), k("decimal_comma"),
		"must be yes, no, or left out to infer it", s.DecimalComma)
	v.check(slices.Contains([]string{"", "utf-8", "utf-16le", "utf-16be", "windows-1252"}, strings.ToLower(s.Encoding)),
		k("encoding"), "must be utf-8, utf-16le, utf-16be or windows-1252", s.Encoding)
	for col := range s.Columns {
		v.check(slices.Contains(TemplateColumns, col) || slices.Contains(v.c.Zuora.CustomFields, col), k("columns."+col),
			"maps a column that Zuora's template does not have (a custom field must be listed in zuora.custom_fields)", col)
	}
	v.check(s.Settle >= 0, k("settle"), "must not be negative", time.Duration(s.Settle))
}

// customFields checks zuora.custom_fields: API names of custom fields
// (Name__c), each once, and an API that carries them. The file and SOAP
// imports take them as template columns, the object API as fields of the
// record; a Mediation event has only the fields zuora.event.fields maps,
// so there a custom field must be mapped, or its values would be lost.
func (v *validator) customFields(z Zuora) {
	seen := map[string]bool{}
	for i, name := range z.CustomFields {
		key := fmt.Sprintf("zuora.custom_fields[%d]", i)
		v.check(usage.IsCustomField(name), key,
			"must be the API name of a custom field of the Usage object, such as Region__c (letters, digits and single underscores, ending in __c)", name)
		v.check(!seen[name], key, "is listed twice", name)
		seen[name] = true
		v.check(z.API != "mediation" || z.Event.Fields[name] != "", key,
			"api: mediation sends only the fields zuora.event.fields maps, so its values would be lost; map it to the meter's field (zuora.event.fields."+name+") or remove it", name)
	}
}

// IsValidation reports whether err came from Validate.
func IsValidation(err error) bool {
	var v *ValidationError
	return errors.As(err, &v)
}

// limits refuses a negative cap: zero keeps the default, and a negative
// one is a typo that would silently mean the default too.
func (v *validator) limits(l Limits) {
	rv := reflect.ValueOf(l)
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		key := "limits." + strings.Split(f.Tag.Get("yaml"), ",")[0]
		v.check(rv.Field(i).Int() >= 0, key, "must be 0 (the default) or more", rv.Field(i).Int())
	}
}

// ledger checks the ledger: a file, or a postgres:// DSN without its
// password, which would be printed and logged with the config.
func (v *validator) ledger() {
	c := v.c
	if !strings.HasPrefix(c.Ledger, "postgres://") && !strings.HasPrefix(c.Ledger, "postgresql://") {
		v.check(c.Ledger != "", "ledger", "must be a file path or a postgres:// DSN", c.Ledger)
		v.check(c.LedgerPasswordFile == "", "ledger_password_file", "is for a postgres:// ledger only", c.LedgerPasswordFile)
		return
	}
	// Renewed a third of the way through; much shorter and a busy
	// database would lose holds, much longer and a dead daemon's drops
	// wait.
	v.check(time.Duration(c.LedgerLease) >= 3*time.Second && time.Duration(c.LedgerLease) <= 10*time.Minute,
		"ledger_lease", "must be from 3s to 10m", time.Duration(c.LedgerLease).String())
	u, err := url.Parse(c.Ledger)
	if err != nil {
		v.check(false, "ledger", "is not a valid postgres:// DSN", "(not shown: it may hold a password)")
		return
	}
	_, inUser := u.User.Password()
	v.check(!inUser && !u.Query().Has("password"), "ledger",
		"must not hold the password: put it in ledger_password_file or PGPASSWORD", "(not shown: it holds a password)")
}
