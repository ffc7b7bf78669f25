using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Conveyor.Hosting;

/// <summary>Checks a worker's settings at host start, naming each bad one by its configuration path.</summary>
internal sealed class WorkerOptionsValidator : IValidateOptions<WorkerOptions>
{
    public static string SectionFor(string? name) =>
        string.IsNullOrEmpty(name) ? $"{ConveyorOptions.SectionName}:Worker" : $"{ConveyorOptions.SectionName}:Workers:{name}";

    public ValidateOptionsResult Validate(string? name, WorkerOptions options)
    {
        var results = new List<ValidationResult>();
        if (Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true))
        {
            return ValidateOptionsResult.Success;
        }

        var section = SectionFor(name);
        return ValidateOptionsResult.Fail(results.Select(r =>
            $"{section}:{string.Join(",", r.MemberNames)}: {r.ErrorMessage}"));
    }
}
