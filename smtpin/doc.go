// Package smtpin accepts list posts over SMTP and LMTP (go-smtp) and hands
// them to archive. go-smtp is used only here.
package smtpin
