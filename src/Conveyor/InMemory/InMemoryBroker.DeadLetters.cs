namespace Conveyor.InMemory;

/// <summary>Single dead letters, for the management store.</summary>
public sealed partial class InMemoryBroker
{
    /// <summary>Moves one dead letter back to its queue, after the messages waiting there.</summary>
    internal bool RequeueDeadLetter(string id)
    {
        lock (_gate)
        {
            var index = _deadLetters.FindIndex(d => d.Id == id);
            if (index < 0)
            {
                return false;
            }

            var letter = _deadLetters[index];
            _deadLetters.RemoveAt(index);
            Enqueue(new Message(letter.Queue, letter.Body.ToArray(), 0, Interlocked.Increment(ref _sequence)));
            return true;
        }
    }

    /// <summary>Deletes one dead letter.</summary>
    internal bool DeleteDeadLetter(string id)
    {
        lock (_gate)
        {
            return _deadLetters.RemoveAll(d => d.Id == id) > 0;
        }
    }
}
