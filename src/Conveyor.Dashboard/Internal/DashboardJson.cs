using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;

namespace Conveyor.Dashboard.Internal;

/// <summary>
/// The dashboard's own JSON settings (web defaults, reflection for its response shapes), so that an application's
/// settings — a slim builder's source-generated-only resolver, another naming policy — never break the page.
/// </summary>
internal static class DashboardJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web) { TypeInfoResolver = new DefaultJsonTypeInfoResolver() };

    public static IResult Json(object value, int? statusCode = null) => Results.Json(value, Options, statusCode: statusCode);
}
