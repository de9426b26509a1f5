//! Spec-checked fake ECS (ECS work).
