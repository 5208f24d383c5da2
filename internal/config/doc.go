// Package config holds the settings of postofficed and the postoffice admin
// CLI and fills them from, in increasing priority, built-in defaults, a
// config file, POSTOFFICE_* environment variables and command-line flags.
//
// Both binaries read the same file, so the file may hold every key; each
// binary offers only the flags it uses. Every key is spelled the same way
// everywhere: "tls-cert" is the flag --tls-cert, the file key tls-cert
// (tls_cert is accepted too) and the environment variable
// POSTOFFICE_TLS_CERT.
//
// The file format is line-based:
//
//	# comment
//	key = value
//	key = "value with # or surrounding spaces"
//
// Boundary: this package parses and checks settings; it opens no sockets,
// databases or files other than the config and password files. Packages
// outside cmd/ never see it: the binaries turn a Config into Options.
//
// Concurrency: a Config is a plain value, filled once at start-up and then
// only read. Loader and the functions here keep no state between calls.
package config
