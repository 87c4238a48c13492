// Package usage is Zuora's usage template, defined once: its columns, the
// limits of its fields, its date formats, the rules of an upload, and the
// CSV that carries it.
//
// Every rule is written here once, with its source in a comment:
// "api.md §X" is ../shared/zuora-api.md, section X; "seed 001" (the usage
// template page) and "seed 003" (the field limits) are the Zuora pages it
// quotes. The package imports nothing of usagedrop's, so that every other
// package may use it.
//
// # Who shares what
//
// convert (which writes the template), uploader (which reads it back for
// the object and Mediation APIs) and config (which checks column names)
// use this package for the facts and for the code: the columns, the
// limits, Len, the date formats, Writer and Reader.
//
// zuorasim uses only the facts: the column names, the numbers of the
// limits (MaxLen, MaxQtyChars, MaxQtyIntDigits, MaxFileSize, MaxNameLen),
// and nothing that decides a value. It keeps its own CSV reader, its own
// date parser and its own checks, written from the same documents, so
// that a bug in this package's code (a writer that quotes wrongly, a
// length counted in bytes, a date turned the wrong way) is refused by the
// simulator instead of agreeing with itself. A fact wrong here is wrong
// on both sides; a fact is a number or a name beside its source, which a
// reader checks against the page in one look.
//
// # Counting characters
//
// Zuora states its limits in "characters" without saying which count;
// it runs on Java, whose strings count UTF-16 units, so a character
// outside the Basic Multilingual Plane (an emoji, a rare CJK ideograph)
// counts two. Len counts that way, the stricter reading: it is never less
// than the number of runes, never more than the number of bytes.
package usage
