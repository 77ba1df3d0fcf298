package auth

import "context"

type clientAddrKey struct{}

// WithClientAddr returns ctx carrying the client's address as the HTTP
// front resolved it (gin's ClientIP: X-Forwarded-For believed only from
// trusted proxies), so that every front end limits and audits sign-ins by
// the same address.
func WithClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

// ClientAddr returns the address WithClientAddr stored, or "".
func ClientAddr(ctx context.Context) string {
	s, _ := ctx.Value(clientAddrKey{}).(string)
	return s
}
