# syntax=docker/dockerfile:1
#
# code-interpreter-agent for Amazon Bedrock AgentCore Runtime: the AgentCore
# Runtime HTTP contract on 0.0.0.0:8080 (POST /invocations, GET /ping), Claude
# on Amazon Bedrock, and code-interpreter-mcp as its child with sessions on
# AgentCore Code Interpreter.
#
# AgentCore Runtime runs ARM64 images only. Build for it with BuildKit:
#
#   docker buildx build --platform linux/arm64 -t code-interpreter-agent:arm64 --load .
#
# A plain `docker build .` builds for the machine it runs on (native on an
# ARM64 host or Graviton CI; on x86_64 it gives an x86_64 image, fine for a
# local smoke test, not for AgentCore). On x86_64, buildx builds ARM64 under
# QEMU emulation, which is slow (expect tens of minutes); an ARM64 builder is
# much faster. README.md, "Deploying to AgentCore Runtime", has every step.
#
# tests/suite/dockerfile.rs checks this file: every COPY source exists and is
# not excluded by .dockerignore, every binary named is a [[bin]] of the
# workspace, every ENV name is read by the binaries, and the entry point.

# ---- build: both binaries, release profile --------------------------------
# The crates need Rust >= 1.94 (Cargo.toml `rust-version`).
FROM rust:1.95-slim-bookworm AS build
ARG TARGETARCH
WORKDIR /build
# Only what the build reads: the workspace manifest and lock file, and the
# sources of the two members ("." and "agent"). The drivers that
# code-interpreter-mcp embeds (include_str!) live under src/.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY agent/Cargo.toml ./agent/Cargo.toml
COPY agent/src ./agent/src
# The registry and target directories are BuildKit cache mounts (one target
# per platform), so a rebuild after a source change recompiles only this
# workspace. Cache mounts are not part of the image: copy the binaries out.
RUN --mount=type=cache,id=cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=cargo-target-${TARGETARCH},target=/build/target,sharing=locked \
    cargo build --release --locked -p code-interpreter-mcp -p code-interpreter-agent --bins \
 && mkdir -p /out \
 && cp target/release/code-interpreter-mcp target/release/code-interpreter-agent /out/

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: TLS to Bedrock and AgentCore.
# python3: not needed by the agentcore backend (sessions run in AgentCore's
# microVMs), but it lets `code-interpreter-mcp doctor` run its smoke test and
# the image run with CODE_INTERPRETER_BACKEND=local for a local try-out
# (where the container runtime allows user namespaces). It adds a few tens of MB.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 1000 --user-group --shell /usr/sbin/nologin agent
COPY --from=build /out/code-interpreter-mcp /out/code-interpreter-agent /usr/local/bin/
# The agent finds the server by CODE_INTERPRETER_MCP_BIN (it would also look
# beside itself), and the server inherits the rest of this environment:
#   CODE_INTERPRETER_BACKEND=agentcore  sessions on AgentCore Code Interpreter
#   CODE_INTERPRETER_AGENTCORE_ID       the managed interpreter, or your own
#   CLAUDE_CODE_USE_BEDROCK=1           Claude through Bedrock, with the
#                                       runtime's execution role
# Region and credentials come from the runtime (AWS_REGION, the execution
# role); the model can be changed with ANTHROPIC_MODEL (an inference-profile
# id). Set these with create-agent-runtime --environment-variables.
ENV CODE_INTERPRETER_MCP_BIN=/usr/local/bin/code-interpreter-mcp \
    CODE_INTERPRETER_BACKEND=agentcore \
    CODE_INTERPRETER_AGENTCORE_ID=aws.codeinterpreter.v1 \
    CLAUDE_CODE_USE_BEDROCK=1
USER 1000:1000
WORKDIR /home/agent
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/code-interpreter-agent", "serve", "--listen", "0.0.0.0:8080"]
