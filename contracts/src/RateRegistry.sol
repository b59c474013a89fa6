// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IRateRegistry} from "./interfaces/IRateRegistry.sol";

/// An append-only history of message prices; nodes price an envelope with the last entry whose
/// startTime is not after the envelope's time.
contract RateRegistry is IRateRegistry {
    address public immutable admin;

    Rates[] private _rates;

    error NotAdmin(address caller);
    error ZeroAddress();
    error StartTimeBeforeLast(uint64 startTime, uint64 lastStartTime);

    constructor(address admin_) {
        if (admin_ == address(0)) revert ZeroAddress();
        admin = admin_;
    }

    function addRates(
        uint64 messageFee,
        uint64 storageFee,
        uint64 congestionFee,
        uint64 targetRatePerMinute,
        uint64 startTime
    ) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        uint256 count = _rates.length;
        if (count > 0 && startTime < _rates[count - 1].startTime) {
            revert StartTimeBeforeLast(startTime, _rates[count - 1].startTime);
        }
        _rates.push(Rates(messageFee, storageFee, congestionFee, targetRatePerMinute, startTime));
        emit RatesAdded(count, messageFee, storageFee, congestionFee, targetRatePerMinute, startTime);
    }

    function getRatesCount() external view returns (uint256) {
        return _rates.length;
    }

    /// Entries fromIndex .. fromIndex+count-1, cut short at the end of the list (so a reader may
    /// ask for a page larger than what is left).
    function getRates(uint256 fromIndex, uint256 count) external view returns (Rates[] memory page) {
        uint256 total = _rates.length;
        uint256 end = fromIndex >= total ? fromIndex : (count > total - fromIndex ? total : fromIndex + count);
        page = new Rates[](end - fromIndex);
        for (uint256 i = fromIndex; i < end; ++i) {
            page[i - fromIndex] = _rates[i];
        }
    }
}
