// Package zuorasim is an in-process Zuora that behaves as Zuora's documents
// say, for tests, benchmarks and `usagedrop sim`.
//
// A *Sim is an http.Handler: serve it with httptest.NewServer or any
// http.Server. It implements OAuth client credentials, the REST file import
// (POST /v1/usage and its status URL), the Import object and a ZOQL query
// on it, the object API for single usage records, Mediation's bulk ingest,
// the SOAP API's login, create of an Import (MTOM) and query,
// Idempotency-Key replay, the tracking headers, and faults that can be
// switched on while it runs (rate limits, server errors, stored server
// errors, lost answers, failed imports, expired tokens).
//
// # Rules
//
// Every rule the sim enforces is listed here with its source and the test
// that proves it; the code that enforces a rule names the same source in a
// comment. Sources:
//
//   - "api.md §X" is ../shared/zuora-api.md, section X.
//   - "seed 000" to "seed 004" are the Zuora pages api.md quotes: 000 the
//     SOAP Import page, 001 the usage template page, 002 the object API,
//     003 the field limits, 004 Mediation's ingest reference.
//   - [Idem] is https://developer.zuora.com/docs/guides/idempotent-requests,
//     [Rate] https://developer.zuora.com/docs/guides/rate-limits,
//     [Format] https://docs.zuora.com/en/zuora-billing/bill-your-customer/usage-billing/usage-file-format,
//     [Usage] https://developer.zuora.com/api-references/api/operation/Object_POSTUsage/,
//     [ImportPage] https://docs.zuora.com/en/zuora-platform/integration/apis/soap-api/soap-api-object-reference/import,
//     [Mass] https://docs.zuora.com/en/zuora-billing/bill-your-customer/usage-billing/import-mass-usage-records.
//   - "silent: stricter" means the docs say nothing and the sim takes the
//     stricter reading, so a client that passes here does not rely on
//     leniency Zuora never promised. "sim" marks what is the sim's own
//     (faults, safety caps), not a claim about Zuora.
//
// The facts (column names, field limits, the upload rules) come from
// package usage, where the client reads them too: one place to correct
// when a tenant is seen to differ. The checks that apply them are the
// sim's own (its CSV reader, date parser and UTF-16 count), so that a bug
// in the client's code cannot hide itself by being shared.
//
// OAuth and headers (sim.go, idempotency.go):
//
//	rule                                                     source                   test
//	POST /oauth/token, form-encoded, grant_type              api.md §OAuth            TestTokenRules
//	  client_credentials, else 400
//	no Authorization header on the token call: 400           api.md §OAuth            TestTokenRules
//	bad client credentials: 401                              api.md §OAuth            TestAuth, TestTokenRules
//	token answer: bearer, expires_in 3599                    api.md §OAuth            TestTokenRules
//	Bearer token on every REST call; 401 {"message":         api.md §OAuth            TestAuth, TestTokenExpires
//	  "Authentication error"} when missing, unknown, expired
//	Zuora-Track-Id at most 64 US-ASCII, none of : ; " ',     api.md §Headers, [Usage] TestTrackIDRules, TestHeaders
//	  echoed; else 400
//	Zuora-Request-Id on every answer                         api.md §Headers          TestHeaders
//	Content-Encoding: gzip bodies read; answers over         api.md §Headers, [Usage] TestGzipAnswers,
//	  1,000 bytes gzipped for Accept-Encoding: gzip                                    TestQueryAndImportObject
//	Idempotency-Key: first answer stored 24 h and replayed   api.md §Headers, [Idem]  TestIdempotencyReplay,
//	  for the key                                                                      TestIdempotencyKeyExpires
//	  failures stored too ("regardless of whether it         api.md §Headers, [Idem]  TestIdempotencyStoresFailures,
//	  succeeded or failed"): 500 and success:false                                     TestObjectStoredFailures
//	  409 while the first request is in flight               api.md §Headers, [Idem]  TestIdempotencyConflictInFlight
//	  422 when used with another URL or method               api.md §Headers, [Idem]  TestIdempotencyKeyRules
//	  less than 255 characters ([Usage] says <= 255)         [Idem]: the stricter     TestIdempotencyKeyRules
//	  POST and PATCH only; refused (400) on other methods    [Idem]; silent: stricter TestIdempotencyKeyRules
//	  every REST POST takes one, the query included          [Idem]                   TestIdempotencyKeyedQueryReplays
//	  gateway 429/500 (admit) not stored                     silent: as a gateway     TestIdempotencyStoresFailures
//	  a request cut off mid-body not stored                  silent: no answer given  TestIdempotencyCutOffRequestNotStored
//	  not on Mediation, SOAP or the token call               seed 004; SOAP has none  TestMediationNoIdempotency
//	Zuora-Entity-Ids, Zuora-Org-Ids: ignored (one tenant)    sim                      -
//	Idempotent-Replayed: true on a replayed answer           sim: a marker for tests, -
//	                                                           not Zuora's header
//
// Limits (sim.go, admit):
//
//	rate limit: 429 with Retry-After (rest of the window)    api.md §Limits, [Rate]   TestRateLimit
//	ratelimit-limit/-remaining/-reset headers (not           api.md §Limits, [Rate]   TestRateLimit, TestFaults
//	  X-RateLimit-*)
//	concurrency limit, default 40: 429, Concurrency-Limit-   api.md §Limits, [Rate]   TestConcurrencyLimit
//	  Type/-Limit/-Remaining
//	5xx body: reasons with an 8-digit code                   api.md §Limits           TestServerErrorBody
//	SOAP's server error is a fault UNKNOWN_ERROR, HTTP 500   seed 000 (SOAP 1.1)      TestSOAPFaults
//
// File import (usage.go, validate.go):
//
//	multipart/form-data, a part named file with a file name  api.md §File import      TestUploadRequestShape
//	file name at most 50 characters                          api.md §File import      TestUploadRejectedOnReceipt,
//	                                                                                   TestUploadRequestShape
//	at most 4,194,304 bytes ("exceeds the maximum file       api.md §File import      TestUploadRejectedOnReceipt,
//	  size of 4,194,304 bytes")                                                        TestUploadRequestShape
//	.csv, or .zip holding exactly one .csv and no directory  api.md §File import      TestUploadRejectedOnReceipt,
//	                                                                                   TestZipOfOneCSVAndLocale
//	200 {"checkImportStatus":"/v1/usage/<32 hex>/status",    api.md §File import      TestImportStatusShape
//	  "size","success":true}, before processing
//	checkImportStatus absolute when the tenant answers so    api.md §File import      TestQueryAndImportObject
//	success:false with HTTP 200 (fault Success200False),     api.md §File import      TestFaults, TestServerErrorBody
//	  stored under its key like a 500
//	status: Pending, Processing, then Completed, Failed or   api.md §File import      TestImportStatusShape, TestFaults
//	  Canceled; only Completed imports records
//	atomic: one bad row fails the file, nothing imported     api.md §File import      TestBadRowsFailWholeImport
//	UTF-8 only                                               api.md §The template     TestHeaderRules
//	no byte order mark                                       silent: stricter         TestHeaderRules
//	header: ACCOUNT_ID, UOM, QTY, STARTDATE, ENDDATE,        api.md §The template,    TestHeaderRules
//	  SUBSCRIPTION_ID, CHARGE_ID present even when empty       seed 001
//	DESCRIPTION, UNIQUE_KEY optional columns                 api.md §The template     TestZipOfOneCSVAndLocale
//	header names exactly as the template spells them         silent: stricter         TestHeaderRules
//	no unknown, empty or repeated column                     silent: stricter         TestHeaderRules
//	custom fields (Name__c) the tenant has                   issue 8, [Format]        TestHeaderRules, TestZipOfOneCSVAndLocale
//	PRODUCT_RATE_PLAN_CHARGE_ID needs WSDL 146               api.md §The template     TestHeaderRules, TestSOAPQueryAndWSDL
//	every row as wide as the header                          silent: stricter         TestRowRules
//	a row of empty values is omitted                         api.md §The template     TestZipOfOneCSVAndLocale
//	ACCOUNT_ID required, at most 50, an existing number      api.md §The template,    TestRowRules, TestRowAtEveryLimit
//	                                                           seed 003
//	UOM required, configured in the tenant                   api.md §The template     TestRowRules
//	QTY required, plain decimal, not negative, at most 16    api.md §The template,    TestCheckQty, TestRowRules,
//	  characters and 13 digits before the point                seed 003; exponent:      TestRowAtEveryLimit
//	                                                           silent: stricter
//	STARTDATE required; dates MM/DD/YYYY (en_US) or          api.md §The template,    TestParseDate, TestRowRules,
//	  DD/MM/YYYY (Options.DateFormat), real dates, date only   seed 001, [Format]       TestZipOfOneCSVAndLocale
//	two-digit day and month                                  silent: stricter         TestParseDate, TestRowRules
//	ENDDATE optional, not before STARTDATE                   api.md §The template     TestRowRules
//	DESCRIPTION at most 200, no emoji                        api.md §The template     TestRowRules, TestRowAtEveryLimit
//	SUBSCRIPTION_ID at most 100, CHARGE_ID at most 50        api.md §The template     TestRowRules, TestRowAtEveryLimit
//	UNIQUE_KEY less than 255 characters, once per file       api.md §The template     TestRowRules, TestRowAtEveryLimit
//	lengths in UTF-16 units, as Java counts characters:      silent: stricter         TestRowRules, TestRowAtEveryLimit
//	  one outside the BMP counts two (textLen)
//	Zuora's row messages, "Row N: " first                    api.md §The template     TestRowRules, TestBadRowsFailWholeImport
//
// Import object and ZOQL (object.go):
//
//	GET /v1/object/import/{id}: Id, ImportType Usage, Name,  api.md §File import      TestQueryAndImportObject
//	  Status, StatusReason, ImportedCount, TotalCount, ...
//	POST /v1/action/query: select <Import fields> from       api.md §File import      TestQueryAndImportObject,
//	  Import where Name|Id = '<value>' (\' escapes); other      (inferred)               TestQueryRules
//	  shapes and fields refused
//
// Object API (object.go):
//
//	POST /v1/object/usage, one record: AccountNumber (50)    api.md §Object API,      TestObjectUsage, TestObjectUsageRules
//	  or AccountId (32), UOM, Quantity, StartDateTime, ...     seed 002
//	rejectUnknownFields=true: 400 "Error - unrecognised      api.md §Object API       TestObjectUsage, TestObjectUsageRules
//	  fields"; without it unknown fields are ignored
//	UniqueKey only from X-Zuora-WSDL-Version 114             api.md §Object API,      TestObjectUsageRules
//	                                                           seed 002
//	custom fields (Name__c) the tenant has                   issue 8, seed 002        TestObjectUsageRules
//	Quantity a JSON number, not a string                     [Usage]; silent: stricter TestObjectUsageRules
//	StartDateTime, EndDateTime date-times, not dates         api.md §Object API       TestObjectUsageRules
//	the file import's value rules and words                  silent: stricter         TestObjectUsageRules
//	200 {"Id","Success":true}; refusal {"Success":false,     api.md §Object API       TestObjectUsageRules
//	  "Errors":[{"Code","Message"}]}
//	a 500 behind a record's key is stored                    api.md §Headers, [Idem]  TestObjectStoredFailures
//
// SOAP (soap.go):
//
//	endpoint /apps/services/a/<WSDL version>, 37.0 or        api.md §SOAP, [Mass]     TestSOAPLogin
//	  higher; else fault INVALID_VERSION
//	login(username, password) → Session, ServerUrl           api.md §SOAP             TestSOAPLogin
//	ServerUrl may point elsewhere (Options.SOAPServerURL)    api.md §SOAP             TestSOAPLogin
//	SessionHeader on later calls; INVALID_SESSION when       api.md §SOAP             TestSOAPLogin
//	  missing or expired (15 minutes)
//	create of one Import, ImportType Usage                   api.md §SOAP, seed 000,  TestSOAPCreateAttachment
//	                                                           [ImportPage]
//	FileContent an MTOM attachment (xop:Include); inline     [ImportPage]; silent:    TestSOAPCreateAttachment
//	  base64 refused                                           stricter
//	attachment Content-Type text/plain;name=<file name>,     seed 000, api.md §SOAP   TestSOAPCreateAttachment
//	  else "Cannot detect the file name from your
//	  Content-Type"
//	Md5 checked when given: "File MD5 verification error"    seed 000                 TestSOAPCreateAttachment
//	the file import's size, name and zip rules, by the       seed 000; name: silent:  TestSOAPCreateAttachment
//	  attachment's name                                        stricter
//	query of Import by Id or Name; Pending, Processing,      api.md §SOAP             TestSOAPQueryAndWSDL
//	  Completed, Failed
//	faults with HTTP 500 (SOAP 1.1)                          seed 000                 TestSOAPLogin, TestSOAPFaults
//
// Mediation (mediation.go): the table in mediation.go's header comment,
// which lists each rule of POST /usage/bulk/{meter} with its source and
// test.
//
// Faults (sim): TooManyRequests, ServerErrors, StoredServerErrors,
// StoredServerErrorsImported, StoredObjectErrors, StoredObjectErrorsCreated,
// SOAPFaultsAfterCreate, Success200False, DropAfterRead, AnswerDelay,
// Conflicts, FailImports, CancelImports, ExpireTokens: TestFaults,
// TestIdempotencyStoresFailures, TestObjectStoredFailures, TestSOAPFaults,
// TestServerErrorBody, TestImportStatusShape and mediation_test.go.
//
// # Caveats
//
// The sim keeps everything in memory and never forgets an import; an
// upload is held in memory (at most 4 MB) while it is checked, and a zip
// entry is inflated to at most 64 MB (sim). Imports are processed lazily:
// an import moves from Pending to Processing to its final state as time
// passes, and the move happens when anybody looks (a status call, Records,
// Imports), so no goroutine outlives a request. It is one tenant: entity
// and org headers are ignored, and Zuora-Track-Id and Idempotency-Key
// rules apply to the whole sim.
package zuorasim
