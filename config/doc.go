// Package config reads the TOML configuration and holds the embedded default.
// It imports nothing of ours; only cmd/mailswarm reads it.
package config
