//! Stripe: the API client (customers, Checkout Sessions) and webhook verification.
