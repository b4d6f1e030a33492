//! Efí (Gerencianet): OAuth2 client credentials over mutual TLS, Pix `cob` and boleto, and
//! the Pix webhook listener.
