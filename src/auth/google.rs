//! Google OAuth2 for Vertex: service-account JWT assertions (RS256), refresh tokens, ADC lookup, token cache.
