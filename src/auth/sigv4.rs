//! AWS Signature Version 4 request signing (header form), as Bedrock needs it.
