// Command postoffice administers a postoffice installation: users,
// mailboxes, quotas, schema migrations and reindexing.
//
// It reads the same config file, POSTOFFICE_* variables and
// --config/--data/--db/--maildir flags as postofficed (internal/config) and
// works on either index backend. Global flags come before the command;
// command flags may come anywhere after it ("user add alice
// --password-stdin").
//
// Boundary: it talks to the store and auth packages only through their
// exported API, exactly as the daemon does; it never touches SQL or
// Maildir files itself.
//
// Concurrency: one command per process, run sequentially; the store it
// opens is closed before exit. Exit status: 0 success, 1 failure, 2 usage.
package main
