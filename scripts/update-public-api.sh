#!/usr/bin/env bash
# Adds every public symbol the PublicApiAnalyzers report as undeclared (RS0016) to each project's
# PublicAPI.Unshipped.txt. Run after a deliberate change to the public API, then review the diff.
set -euo pipefail
cd "$(dirname "$0")/.."
for project in src/*/; do
  csproj=$(ls "$project"*.csproj 2>/dev/null | head -1) || continue
  [ -n "$csproj" ] || continue
  unshipped="$project/PublicAPI.Unshipped.txt"
  [ -f "$unshipped" ] || echo '#nullable enable' > "$unshipped"
  # Only this project's symbols: building it also reports those of the projects it references.
  dotnet build "$csproj" -c Release 2>&1 | grep RS0016 | grep -F "[$(realpath "$csproj")]" | sed -E "s/.*Symbol '(.*)' is not part of the declared public API.*/\1/" | sort -u > /tmp/rs0016.txt || true
  if [ -s /tmp/rs0016.txt ]; then
    { cat "$unshipped"; cat /tmp/rs0016.txt; } | grep -v '^#nullable' | sort -u > /tmp/api-merged.txt
    { echo '#nullable enable'; cat /tmp/api-merged.txt; } > "$unshipped"
    echo "$csproj: added $(wc -l < /tmp/rs0016.txt) symbol(s)"
  fi
done
