//! AWS credentials chain (SPEC §2): config, environment, shared credentials file, ECS, IMDSv2.
