#!/usr/bin/env bash
# The Bicep CLI, from NuGet: package Azure.Bicep.CommandLine.<rid> (a self-contained binary), restored
# once with the .NET SDK into .cache/bicep/ and reused after.
#   scripts/bicep.sh --path      prints the binary's path (restoring it first if needed)
#   scripts/bicep.sh ARGS…       runs it, e.g. scripts/bicep.sh build infra/main.bicep --stdout
# Exit 3 when it cannot be restored because there is no .NET SDK.
set -euo pipefail
VERSION=0.49.2
root=$(cd "$(dirname "$0")/.." && pwd)
case "$(uname -m)" in
  x86_64 | amd64) rid=linux-x64 ;;
  aarch64 | arm64) rid=linux-arm64 ;;
  *) echo "bicep: no Bicep CLI package for $(uname -m)" >&2; exit 3 ;;
esac
id="Azure.Bicep.CommandLine.$rid"
dir="$root/.cache/bicep"
bin="$dir/packages/$(echo "$id" | tr '[:upper:]' '[:lower:]')/$VERSION/tools/bicep"

if [ ! -x "$bin" ]; then
  if ! command -v dotnet >/dev/null 2>&1; then
    echo "bicep: no .NET SDK (dotnet) on PATH to restore $id $VERSION from NuGet" >&2
    exit 3
  fi
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
  # A project that only downloads the package; it targets the SDK's own framework, so restoring it
  # needs nothing else from NuGet.
  tfm="net$(dotnet --version | cut -d. -f1).0"
  mkdir -p "$dir"
  cat >"$dir/restore.csproj" <<CSPROJ
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>$tfm</TargetFramework></PropertyGroup>
  <ItemGroup><PackageDownload Include="$id" Version="[$VERSION]" /></ItemGroup>
</Project>
CSPROJ
  dotnet restore "$dir/restore.csproj" --packages "$dir/packages" >&2
  chmod +x "$bin"
fi

if [ "${1:-}" = "--path" ]; then
  echo "$bin"
else
  exec "$bin" "$@"
fi
