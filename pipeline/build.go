package pipeline

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"usagedrop/config"
	"usagedrop/convert"
	"usagedrop/sources/local"
	"usagedrop/uploader"
	"usagedrop/usage"
	"usagedrop/watcher"
	"usagedrop/zuorasim"
)

// BuildSource makes the backend a config entry names. It is the one place
// that maps a `type:` to a constructor.
func BuildSource(c config.Source, instance string, log *slog.Logger) (Source, error) {
	s := Source{
		Watch: watcher.Options{Settle: time.Duration(c.Settle), Interval: time.Duration(c.Interval)},
		Read:  ReadOptions(c),
		Lease: time.Duration(c.Lease),
	}
	switch c.Type {
	case "local":
		if err := os.MkdirAll(c.Path, 0o755); err != nil {
			return s, fmt.Errorf("source %s: %w", c.Name, err)
		}
		l := local.New(c.Name, c.Path)
		l.Owner, l.Lease, l.Logger = instance, time.Duration(c.Lease), log
		finishDirs(c, &l.ImportedDir, &l.FailedDir)
		s.Src = l
		s.Watch.Dir = c.Path
	default:
		return s, buildRemote(&s, c, instance, log)
	}
	return s, nil
}

// finishDirs applies the configured imported/ and failed/ folders over a
// backend's defaults.
func finishDirs(c config.Source, imported, failed *string) {
	if c.ImportedDir != "" {
		*imported = c.ImportedDir
	}
	if c.FailedDir != "" {
		*failed = c.FailedDir
	}
}

// ReadOptions are the convert settings of a source.
func ReadOptions(c config.Source) convert.Options {
	return convert.Options{
		DateFormat: c.DateFormat, DecimalComma: c.DecimalComma, Sheet: c.Sheet,
		Columns: c.Columns, Encoding: strings.ToLower(c.Encoding),
	}
}

// Zuora is a connection to Zuora and, for the builtin endpoint, the
// simulator behind it.
type Zuora struct {
	Uploader uploader.Uploader
	BaseURL  string
	Sim      *zuorasim.Sim // nil for a real tenant
	Close    func()

	// Client is the HTTP client under Uploader, for `usagedrop test`.
	Client *uploader.Client
}

// BuildZuora connects to the tenant, or starts the simulator on a loopback
// port for the builtin endpoint.
func BuildZuora(z config.Zuora, log *slog.Logger) (*Zuora, error) {
	return BuildZuoraWith(z, log, nil)
}

// BuildZuoraWith is BuildZuora with every request to Zuora sent through
// rt (a *ZuoraWatch); nil is http.DefaultTransport.
func BuildZuoraWith(z config.Zuora, log *slog.Logger, rt http.RoundTripper) (*Zuora, error) {
	return BuildZuoraLimited(z, log, rt, nil)
}

// BuildZuoraLimited is BuildZuoraWith with every request to Zuora held by
// lim, the fleet's limiter of a shared ledger; nil is this process's own,
// of zuora.max_concurrency and zuora.requests_per_minute.
func BuildZuoraLimited(z config.Zuora, log *slog.Logger, rt http.RoundTripper, lim uploader.Limiter) (*Zuora, error) {
	if lim == nil {
		lim = uploader.NewLocalLimiter(cmp.Or(z.MaxConcurrency, config.DefaultMaxConcurrency), z.RequestsPerMinute)
	}
	out := &Zuora{BaseURL: z.Endpoint, Close: func() {}}
	id, secret := z.ClientID, z.ClientSecret.Value()
	if z.Endpoint == config.Builtin {
		opt := zuorasim.Options{DateFormat: z.DateFormat, Logger: log.With("component", "zuorasim")}
		if z.API == "mediation" {
			// The simulated meter's event definition is the one the
			// mapping sends, as a tenant's would be.
			opt.MediationSchema, opt.MediationDedupeField = meterSchema(z.Event), z.Event.DedupeField
		}
		sim := zuorasim.New(opt)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("start builtin zuora: %w", err)
		}
		srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		out.Sim, out.BaseURL = sim, "http://"+ln.Addr().String()
		out.Close = func() { srv.Close() }
		id, secret = "builtin", "builtin"
	}
	wsdl := ""
	if v := usage.RatePlanCharge.MinWSDL(); slices.Contains(z.Columns, usage.RatePlanCharge.Column()) {
		// Zuora reads that column only from this WSDL version on.
		wsdl = fmt.Sprintf("%d.0", v)
	}
	var hc *http.Client // nil: the uploader's own
	if rt != nil {
		// The uploader's default timeout (uploader.Config.HTTPClient):
		// a little longer than Zuora's own 120 s limit.
		hc = &http.Client{Timeout: 150 * time.Second, Transport: rt}
	}
	c := uploader.NewClient(uploader.Config{
		HTTPClient:  hc,
		WSDLVersion: wsdl,
		BaseURL:     out.BaseURL, ClientID: id, ClientSecret: secret,
		EntityIDs: z.EntityIDs, OrgIDs: z.OrgIDs, Logger: log,
		BackoffBase: time.Duration(z.Backoff), BackoffCap: min(time.Duration(z.BackoffMax), time.Minute),
		Limiter: lim,
	})
	out.Client = c
	switch z.API {
	case "file", "":
		out.Uploader = uploader.NewFileImport(c)
	case "object":
		out.Uploader = uploader.NewObjectImport(c, z.DateFormat)
	case "mediation":
		loc, err := z.Event.Location()
		if err != nil {
			out.Close()
			return nil, fmt.Errorf("zuora.event.time_zone: %w", err)
		}
		out.Uploader = uploader.NewMediation(c, z.Meter, z.DateFormat, uploader.EventMapping{
			Fields: z.Event.Fields, Location: loc, DedupeField: z.Event.DedupeField,
		})
	case "soap":
		endpoint, user, pass := z.SOAPEndpoint, z.Username, z.Password.Value()
		if out.Sim != nil {
			endpoint, user, pass = out.BaseURL+"/apps/services/a/119.0", "builtin", "builtin"
		}
		out.Uploader = uploader.NewSOAPImport(c, endpoint, user, pass)
	default:
		out.Close()
		return nil, fmt.Errorf("zuora.api %q: %w", z.API, errors.ErrUnsupported)
	}
	return out, nil
}

// Template is the CSV that Zuora receives. For api: mediation its columns
// are those the event mapping carries, so that a file with a value in any
// other column is rejected row by row instead of losing the value.
func Template(z config.Zuora) convert.Template {
	if z.API == "mediation" {
		return convert.Template{Columns: z.Event.Columns(), DateFormat: z.DateFormat}
	}
	cols := z.Columns
	if len(z.CustomFields) > 0 {
		// The custom fields go after the columns, unless the columns
		// place them; nil columns are the classic eight.
		cols = append([]string(nil), z.Columns...)
		if len(cols) == 0 {
			cols = usage.Header{}.Names()
		}
		for _, name := range z.CustomFields {
			if !slices.Contains(cols, name) {
				cols = append(cols, name)
			}
		}
	}
	return convert.Template{Columns: cols, DateFormat: z.DateFormat}
}

// meterSchema is the event definition of a meter fed through ev: QTY as a
// number, the dates as date-times, the rest as strings; the columns every
// record has, and the dedupe field, required.
func meterSchema(ev config.Event) map[string]zuorasim.EventField {
	out := map[string]zuorasim.EventField{}
	for col, name := range ev.Fields {
		if name == "" {
			continue
		}
		f := zuorasim.EventField{Type: "string", Required: slices.Contains(usage.RequiredValues(), col)}
		switch col {
		case "QTY":
			f.Type = "number"
		case "STARTDATE", "ENDDATE":
			f.Type = "date-time"
		}
		out[name] = f
	}
	if ev.DedupeField != "" {
		out[ev.DedupeField] = zuorasim.EventField{Type: "string", Required: true}
	}
	return out
}
